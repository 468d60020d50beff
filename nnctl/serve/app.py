"""The HTTP application: FastAPI routes over the served models, every error a JSON `{"error": "..."}`.

    POST /predict, /models/{name}/predict   rows (JSON or CSV) -> predictions, as `nnctl predict` prints them
    GET  /health, /model, /models, /models/{name}, /metrics

Imported only by `nnctl serve` (FastAPI is the `serve` extra). Handlers take the raw `Request` and return bytes: no
pydantic model per row, so a single-row request costs little more than its forward pass. A body of more than
`THREAD_FROM` bytes is predicted on a worker thread, so a big request does not stall the small ones (the forward pass
only reads the weights: several threads may share a model).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nnctl.errors import InputError, NnctlError
from nnctl.serve.metrics import CONTENT_TYPE, Metrics
from nnctl.serve.registry import Served, Slot, Watcher
from nnctl.serve.rows import JSON, SOURCE, Answer, Options, RequestError, answer, media_type

# what /docs shows for the predict routes, whose handlers read the raw body (no pydantic model per row)
PREDICT_OPENAPI: dict[str, Any] = {
    "requestBody": {"required": True, "content": {
        JSON: {"schema": {"anyOf": [{"type": "array", "items": {"type": "object"}},
                                    {"type": "object", "properties": {"rows": {"type": "array",
                                                                               "items": {"type": "object"}}}}]},
               "example": [{"column": 1.0}]},
        "text/csv": {"schema": {"type": "string"}, "example": "column\n1.0\n"}}},
    "parameters": [
        {"name": "proba", "in": "query", "schema": {"type": "boolean", "default": False},
         "description": "add one proba_<class> value per class, as predict --proba"},
        {"name": "threshold", "in": "query", "schema": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
         "description": "two-class models: the second class when its probability is at least this"}],
}
THREAD_FROM = 64 * 1024  # body bytes from which a request is predicted on a worker thread
ROWS_KEY = "nnctl.rows"  # the scope key a predict handler leaves its row count under, for the access log


@dataclass(frozen=True)
class ServeOptions:
    """What `nnctl serve` was asked for, beyond the address: it travels to `--workers` processes as JSON."""

    models: tuple[Path, ...]
    max_body: int = 10_000_000  # bytes
    access_log: bool = False
    poll: float = 0.5  # seconds between looks at the model files

    def to_json(self) -> str:
        return json.dumps({"models": [str(p) for p in self.models], "max_body": self.max_body,
                           "access_log": self.access_log, "poll": self.poll})

    @classmethod
    def from_json(cls, text: str) -> ServeOptions:
        data = json.loads(text)
        return cls(tuple(Path(p) for p in data["models"]), data["max_body"], data["access_log"], data["poll"])


def error(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status, media_type=JSON)


def create_app(options: ServeOptions, slots: dict[str, Slot], log: Callable[[str], None]) -> ASGIApp:
    """The application answering with `slots` (already loaded); `log` gets the access log and reload lines."""
    metrics = Metrics()
    watcher = Watcher(slots, log, options.poll)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watcher.start()
        yield
        watcher.stop()

    app = FastAPI(title="nnctl serve", summary="Predictions from nnctl models", lifespan=lifespan)
    names = ", ".join(slots)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return error(404, f"no endpoint {request.method} {request.url.path}; see /docs (serving: {names})")
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:  # a bug: still JSON, no traceback
        return error(500, f"internal error ({type(exc).__name__}: {exc})")

    def slot_named(name: str | None) -> Slot:
        if name is None:
            if len(slots) > 1:
                raise RequestError(f"several models are served ({names}); use /models/NAME/...", 404)
            return next(iter(slots.values()))
        if name not in slots:
            raise RequestError(f"no model named '{name}'; serving: {names}", 404)
        return slots[name]

    async def predict_with(name: str | None, request: Request) -> Response:
        try:
            slot = slot_named(name)
            served = slot.current  # this request's model, whatever is swapped in meanwhile
            kind = media_type(request.headers.get("content-type"))
            query = Options.parse(dict(request.query_params))
            body = await read_body(request, options.max_body)
            if len(body) >= THREAD_FROM:
                result: Answer = await run_in_threadpool(answer, served.model, body, kind, query)
            else:
                result = answer(served.model, body, kind, query)
        except RequestError as exc:
            return error(exc.status, str(exc))
        except InputError as exc:  # a DataError from predict: missing or wrong-typed columns, a bad threshold
            return error(422, str(exc))
        except NnctlError as exc:
            return error(500, str(exc))
        except (ValueError, ArithmeticError, MemoryError) as exc:  # the model cannot predict
            return error(500, f"{slot.name}: the model cannot predict ({type(exc).__name__}: {exc})")
        metrics.predicted(slot.name, result.rows)
        request.scope[ROWS_KEY] = result.rows
        return Response(result.body, 200, media_type=result.media_type)

    @app.post("/predict", summary="Predict with the model (when one is served)", openapi_extra=PREDICT_OPENAPI)
    async def predict(request: Request) -> Response:
        return await predict_with(None, request)

    @app.post("/models/{name}/predict", summary="Predict with the model named NAME (its file stem)",
              openapi_extra=PREDICT_OPENAPI)
    async def predict_named(name: str, request: Request) -> Response:
        return await predict_with(name, request)

    @app.get("/health", summary="Whether the server answers, and the models it serves")
    async def health() -> Response:
        return Response(json.dumps({"status": "ok", "models": list(slots)}), media_type=JSON)

    @app.get("/model", summary="The served model (when one is served)")
    async def model() -> Response:
        return describe_named(None)

    @app.get("/models", summary="Every served model")
    async def models() -> Response:
        return Response(json.dumps({"models": [describe(s.current) for s in slots.values()]}), media_type=JSON)

    @app.get("/models/{name}", summary="The model named NAME")
    async def model_named(name: str) -> Response:
        return describe_named(name)

    def describe_named(name: str | None) -> Response:
        try:
            return Response(json.dumps(describe(slot_named(name).current)), media_type=JSON)
        except RequestError as exc:
            return error(exc.status, str(exc))

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        reloads = [(s.name, s.reloads, s.failures) for s in slots.values()]
        return Response(metrics.text(reloads), media_type=CONTENT_TYPE)

    return Observed(app, metrics, log if options.access_log else None)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 when its Content-Length says it is over `limit`, or when it grows over it while
    it streams in (a body without a length)."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise RequestError(f"{SOURCE}: body of {int(length)} bytes is over the limit of {limit} bytes "
                           "(nnctl serve --max-body); send fewer rows per request", 413)
    parts, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise RequestError(f"{SOURCE}: body over the limit of {limit} bytes (nnctl serve --max-body); send "
                               "fewer rows per request", 413)
        parts.append(part)
    return b"".join(parts)


def describe(served: Served) -> dict[str, Any]:
    """`GET /model`: the columns a request must have (and their kinds), the classes, how the model was trained."""
    model = served.model
    history = model.history
    columns = []
    for spec in model.preprocessor.features:
        column: dict[str, Any] = {"name": spec.name, "kind": spec.kind}
        if spec.kind == "categorical":
            column["categories"] = spec.categories
        columns.append(column)
    info: dict[str, Any] = {"name": served.name, "path": str(served.path), "task": model.task,
                            "target": model.target.name, "columns": columns}
    if model.task == "classification":
        info["classes"] = model.target.classes
    info["threshold"] = model.threshold
    info["temperature"] = model.temperature
    info["training"] = {
        "epochs": len(history),
        "restored_best_epoch": model.provenance.restored_best_epoch,
        "last_epoch": {k: v for k, v in history[-1].items() if k != "seconds"} if history else None,
        "seconds": round(sum(row.get("seconds", 0.0) for row in history), 3),
    }
    info["loaded_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(served.loaded_at))
    return info


class Observed:
    """ASGI wrapper that counts every request (route, status, latency) and writes the access log line."""

    ROUTES = frozenset({"/predict", "/health", "/model", "/models", "/metrics", "/docs", "/openapi.json"})

    def __init__(self, app: ASGIApp, metrics: Metrics, log: Callable[[str], None] | None) -> None:
        self.app, self.metrics, self.log = app, metrics, log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            seconds = time.perf_counter() - started
            path: str = scope["path"]
            self.metrics.observe(scope["method"], self.route(path), status, seconds)
            if self.log is not None:
                client = scope.get("client") or ("-", 0)
                rows = scope.get(ROWS_KEY)
                shown = f" {rows} row{'s' if rows != 1 else ''}" if rows is not None else ""
                self.log(f'{client[0]} "{scope["method"]} {path}" {status}{shown} {seconds * 1000:.1f} ms')

    def route(self, path: str) -> str:
        """The route template a path matched, so a metric's labels stay few whatever the paths asked."""
        if path in self.ROUTES:
            return path
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "models" and parts[3] == "predict":
            return "/models/{name}/predict"
        if len(parts) == 3 and parts[1] == "models":
            return "/models/{name}"
        return "other"
