"""`nnctl serve` under load, on this machine's loopback: single-row requests from concurrent clients, then one big one.

Usage: python benchmarks/bench_serve.py [--clients 32] [--seconds 10] [--rows 100000]   (or `make bench-serve`).
Exits 1 when a goal is missed.

The server is `nnctl serve` in a subprocess (an iris model trained first, to a temporary folder). The clients are
one asyncio process (uvloop when installed) with one keep-alive connection per client and a minimal HTTP/1.1
parser, so they cost the shared two cores as little as a client can; the CPU seconds of the server and of the
clients are both reported. Only loopback addresses are used, the load phase is bounded in time, and it stops itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_RPS, GOAL_P99, GOAL_ROWS = 1_000, 0.050, 150_000
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def request_bytes(port: int, body: bytes, path: str = "/predict") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    """Send one request on a kept-alive connection; its status and body."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def client(port: int, bodies: list[bytes], stop: float, latencies: list[float], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    requests = [request_bytes(port, body) for body in bodies]
    i = 0
    try:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                status, body = await exchange(reader, writer, requests[i % len(requests)])
            except (OSError, asyncio.IncompleteReadError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            latencies.append(time.perf_counter() - started)
            if status != 200 or not body.startswith(b'{"predictions": [{'):
                errors.append(f"{status}: {body[:200]!r}")
            i += 1
    finally:
        writer.close()


async def load(port: int, clients: int, seconds: float, rows: list[dict[str, float]]) -> tuple[list[float], list[str],
                                                                                              float]:
    """`clients` connections sending single-row requests for `seconds`: latencies, errors, wall time."""
    bodies = [json.dumps([row]).encode() for row in rows]
    latencies: list[float] = []
    errors: list[str] = []
    # warm-up: every connection made and a few requests answered before the clock starts
    await asyncio.gather(*(client(port, bodies, time.perf_counter() + 0.5, [], errors) for _ in range(clients)))
    started = time.perf_counter()
    await asyncio.gather(*(client(port, bodies, started + seconds, latencies, errors) for _ in range(clients)))
    return latencies, errors, time.perf_counter() - started


async def big(port: int, rows: list[dict[str, float]], n: int) -> tuple[float, int, int]:
    """One request of `n` rows: seconds from its first byte sent to its last byte received, status, rows back."""
    body = json.dumps([rows[i % len(rows)] for i in range(n)]).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    started = time.perf_counter()
    status, answer = await exchange(reader, writer, request_bytes(port, body))
    seconds = time.perf_counter() - started
    writer.close()
    got = len(json.loads(answer)["predictions"]) if status == 200 else 0
    return seconds, status, got


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), children excluded."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(model: Path) -> tuple[subprocess.Popen[str], int]:
    server = subprocess.Popen([sys.executable, "-m", "nnctl", "serve", str(model), "--port", "0"], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    line = server.stderr.readline()
    if "serving" not in line:
        server.kill()
        sys.exit(f"nnctl serve did not start: {line}{server.stderr.read()}")
    return server, int(line.rsplit(":", 1)[1].split()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the load phase (default 10)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the big request (default 100000)")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    load_before = os.getloadavg()[0]
    rng = random.Random(0)
    rows = [{name: round(rng.uniform(0.1, 8.0), 1) for name in FEATURES} for _ in range(1000)]
    with tempfile.TemporaryDirectory() as folder:
        model = Path(folder) / "iris.npz"
        subprocess.run([sys.executable, "-m", "nnctl", "train", "configs/iris.yaml", "-o", str(model), "-q"],
                       cwd=ROOT, check=True)
        server, port = start_server(model)
        try:
            server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
            latencies, errors, wall = asyncio.run(load(port, args.clients, args.seconds, rows))
            server_cpu, client_cpu = cpu_seconds(server.pid) - server_cpu, time.process_time() - client_cpu
            seconds, status, got = asyncio.run(big(port, rows, args.rows))
        finally:
            server.terminate()
            server.wait(timeout=30)
    rate = len(latencies) / wall
    latencies.sort()
    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan")
    rows_rate = got / seconds if got else 0.0
    print(f"single-row JSON, {args.clients} keep-alive clients, {wall:.1f} s: {len(latencies):,} requests, "
          f"{rate:,.0f} req/s, p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, {len(errors)} errors")
    print(f"  CPU over the load phase: server {server_cpu:.1f} s ({server_cpu / wall:.0%} of a core), clients "
          f"{client_cpu:.1f} s ({client_cpu / wall:.0%}), on {os.cpu_count()} cores; load average before the run "
          f"{load_before:.1f} (above ~0.5, other processes share the cores and the figures are lower)")
    print(f"one JSON request of {args.rows:,} rows: status {status}, {seconds:.2f} s (send, predict, receive), "
          f"{rows_rate:,.0f} rows/s")
    for error in errors[:3]:
        print(f"  error: {error}")
    missed = []
    if rate < GOAL_RPS:
        missed.append(f"{rate:,.0f} req/s (goal {GOAL_RPS:,})")
    if not p99 <= GOAL_P99:
        missed.append(f"p99 {p99 * 1000:.1f} ms (goal {GOAL_P99 * 1000:.0f} ms)")
    if errors:
        missed.append(f"{len(errors)} errors (goal 0)")
    if got != args.rows or rows_rate < GOAL_ROWS:
        missed.append(f"big request {rows_rate:,.0f} rows/s, {got:,} rows back (goal {GOAL_ROWS:,} rows/s)")
    print("goals: " + ("all met" if not missed else "MISSED " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
