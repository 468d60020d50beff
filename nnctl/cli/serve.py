"""`nnctl serve MODEL [MODEL ...]`: the models over HTTP, on uvicorn (the `serve` extra).

The CLI binds the socket itself, so `--port 0` can say which port it got, prints the startup line, and hands the
socket to uvicorn: one server in this process, or `--workers N` processes sharing it, each building its app from
`worker_app` (an import string, as uvicorn's workers need) with the options in the environment. SIGTERM or Ctrl-C
stops accepting, lets the requests in flight finish, and exits 0.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nnctl.cli.app import app, errors
from nnctl.errors import InputError

if TYPE_CHECKING:
    import socket

    from starlette.types import ASGIApp

    from nnctl.serve.app import ServeOptions

OPTIONS_VARIABLE = "NNCTL_SERVE_OPTIONS"  # the options, as JSON, for --workers processes
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_size(text: str) -> int:
    """`10MB` -> 10000000 bytes (KB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS or float(match.group(1)) * _UNITS[unit] < 1:
        raise InputError(f"--max-body {text}: expected a size like 10MB, 512KB, 1GiB or a number of bytes")
    return int(float(match.group(1)) * _UNITS[unit])


def log(line: str) -> None:
    """The access log and the reload lines: one line each on stderr (from the loop's or the watcher's thread)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@app.command()
def serve(
    models: Annotated[list[Path], typer.Argument(metavar="MODEL", help="Model files (.npz) to serve, each "
                                                 "named by its file stem.", show_default=False)],
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0: every interface).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: a free one, named "
                                      "in the startup line).")] = 8000,
    max_body: Annotated[str, typer.Option("--max-body", metavar="SIZE", help="Refuse request bodies over this "
                                          "size with 413, e.g. 512KB, 10MB, 1GiB.")] = "10MB",
    workers: Annotated[int, typer.Option("--workers", min=1, help="Server processes sharing the port (each "
                                         "loads the models and watches their files).")] = 1,
    access_log: Annotated[bool, typer.Option("--access-log", help="One line per request on stderr.")] = False,
) -> None:
    """Serve models over HTTP: POST /predict (JSON records or CSV) answers as `nnctl predict` would.

    Also GET /health, /model, /metrics (Prometheus) and /docs. A model file replaced while serving (as `nnctl
    train` writes it) is loaded and swapped in between requests. SIGTERM or Ctrl-C: finish the requests in
    flight, exit 0. Needs FastAPI and uvicorn (the 'serve' extra)."""
    from nnctl.errors import require

    with errors():
        require("fastapi", "serve", "nnctl serve")
        require("uvicorn", "serve", "nnctl serve")
        from nnctl.serve.app import ServeOptions, create_app
        from nnctl.serve.registry import open_slots

        options = ServeOptions(tuple(models), parse_size(max_body), access_log)
        slots = open_slots(options.models)  # load every model before listening: a bad file fails now
        listener = _bind(host, port)
        address = listener.getsockname()
        shown_host = f"[{address[0]}]" if ":" in address[0] else address[0]
        served = ", ".join(f"{name} ({slot.path})" for name, slot in slots.items())
        workers_note = f" with {workers} workers" if workers > 1 else ""
        log(f"serving {served} on http://{shown_host}:{address[1]}{workers_note}")
        if workers == 1:
            _run(create_app(options, slots, log), listener)
        else:
            _run_workers(options, listener, workers)


def worker_app() -> ASGIApp:
    """The app of one `--workers` process, from the options the parent put in the environment."""
    from nnctl.serve.app import ServeOptions, create_app
    from nnctl.serve.registry import open_slots

    options = ServeOptions.from_json(os.environ[OPTIONS_VARIABLE])
    return create_app(options, open_slots(options.models), log)


def _bind(host: str, port: int) -> socket.socket:
    import socket  # not at import time: `nnctl --help` does not pay for it

    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"--host {host}: not an address this machine can listen on ({exc.strerror})") from None
    family, kind, proto, _, address = info[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as exc:
        listener.close()
        raise InputError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror}); choose another port, or "
                         "0 for a free one") from None
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def _config(app: Any, **extra: Any) -> Any:
    import uvicorn

    # uvicorn picks uvloop and httptools (C) when installed: uvicorn[standard], in the serve extra
    return uvicorn.Config(app, log_level="warning", access_log=False, server_header=False, timeout_graceful_shutdown=30,
                          **extra)


def _run(application: ASGIApp, listener: socket.socket) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM/SIGINT once it has shut down gracefully; a finished shutdown is exit 0 here."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    Server(_config(application)).run(sockets=[listener])


def _run_workers(options: ServeOptions, listener: socket.socket, workers: int) -> None:
    from uvicorn.supervisors import Multiprocess

    os.environ[OPTIONS_VARIABLE] = options.to_json()
    config = _config("nnctl.cli.serve:worker_app", factory=True, workers=workers)
    Multiprocess(config, sockets=[listener]).run()
