"""The Dask clusters nnctl runs work on: an existing scheduler, or an embedded `LocalCluster` of worker processes
(one thread each, Ctrl-C left to the client), with Dask's own logging kept off stderr. The sweep's trials and
cross-validation's folds both run here as futures.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

from nnctl.errors import InputError
from nnctl.sweep.plan import CONNECT_TIMEOUT, require_distributed
from nnctl.sweep.results import one_line


@contextlib.contextmanager
def quiet_dask(debug: bool) -> Iterator[None]:
    """Dask's own logging and warnings stay off stderr unless `debug`."""
    if debug:
        yield
        return
    from distributed.utils import silence_logging_cmgr

    with silence_logging_cmgr(logging.CRITICAL), warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"(distributed|dask)(\.|$)")
        yield


def check_address(address: str) -> None:
    """A malformed scheduler address is a one-line input error, before any connection attempt."""
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(address)
        get_backend(scheme)
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{{scheduler}} {address}: not a scheduler address ({exc}); expected e.g. "
                         "tcp://HOST:8786", arguments=("scheduler",)) from None


def dask_setup(worker: Any) -> None:
    """Dask preload for the embedded cluster's worker processes: ignore SIGINT. A Ctrl-C on the terminal
    reaches the whole process group; the client cancels the trials and closes the cluster, and workers
    interrupted on their own would only print tracebacks."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _workers(client: Any) -> str:
    n = len(client.scheduler_info().get("workers", {}))
    return f"{n} worker{'s' if n != 1 else ''}"


@contextlib.contextmanager
def connect(scheduler: str | None, client: Any, workers: int | None, debug: bool,
            connect_timeout: float) -> Iterator[tuple[Any, str]]:
    """A Dask client, and a description of its cluster: the one given, one connected to `scheduler`, or an
    embedded LocalCluster of `workers` processes (one thread each, no dashboard). What it starts, it closes."""
    distributed = require_distributed()
    if client is not None:
        yield client, f"the cluster at {client.scheduler.address} ({_workers(client)})"
        return
    if scheduler is not None:  # its address is checked already
        try:
            connected = distributed.Client(scheduler, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            detail = "" if "timed out" in str(exc).lower() else f" ({one_line(exc)})"
            raise InputError(f"{{scheduler}} {scheduler}: no Dask scheduler answered within {connect_timeout:g} s"
                             f"{detail}; is the cluster running, and is the address right?",
                             arguments=("scheduler",)) from None
        try:
            yield connected, f"the cluster at {scheduler} ({_workers(connected)})"
        finally:
            with contextlib.suppress(Exception):
                connected.close()
        return
    n = workers or os.cpu_count() or 1
    cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.WARNING if debug else logging.CRITICAL,
                                       preload=[__name__])  # dask_setup above: Ctrl-C is the client's to handle
    try:
        local = distributed.Client(cluster, set_as_default=False)
        try:
            yield local, f"a local cluster of {n} worker process{'es' if n != 1 else ''}"
        finally:
            with contextlib.suppress(Exception):
                local.close()
    finally:
        with contextlib.suppress(Exception):
            cluster.close()


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int | None, debug: bool = False) -> Iterator[Any]:
    """A Dask client as `run_sweep` makes one (the scheduler at `scheduler`, else an embedded cluster of `workers`
    processes), with Dask's logging quiet; for other work that runs as futures (`nnctl.sweep.cv`)."""
    require_distributed()
    if scheduler is not None:
        check_address(scheduler)
    if workers is not None and workers < 1:
        raise InputError(f"{{workers}} {workers}: needs at least 1", arguments=("workers",))
    with quiet_dask(debug), connect(scheduler, None, workers, debug, CONNECT_TIMEOUT) as (client, _):
        yield client


