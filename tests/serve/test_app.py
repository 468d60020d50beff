"""`nnctl serve` as users run it: a real server process on loopback, called over HTTP with httpx.

Every endpoint and every error status, the model file replaced under concurrent requests, and SIGTERM with a
request in flight.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from nnctl.inference.predict import predict
from nnctl.serve.rows import JSON, Options, answer

from conftest import DATASETS, ROOT
from serve_models import iris, mpg

ROW = {"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 5.1, "petal_width": 1.8}


class Server:
    """`nnctl serve ARGS --port 0` in a subprocess; its stderr lines are collected as they come."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "nnctl", "serve", *args, "--port", "0"], cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stderr is not None
        self.startup = self.process.stderr.readline().rstrip("\n")
        if not self.startup.startswith("serving "):
            self.process.kill()
            raise AssertionError(f"nnctl serve did not start: {self.startup}{self.process.stderr.read()}")
        self.url = self.startup.split(" on ", 1)[1].split()[0]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        finally:
            self._reader.join(timeout=5)

    def wait_for_line(self, fragment: str, seconds: float = 15) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = [line for line in self.lines if fragment in line]
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no line with {fragment!r} on stderr: {self.lines}")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def models(folder):
    """iris and mpg, saved; and `broken`: iris whose preprocessing lost a column, so its network cannot predict."""
    found = {"iris": iris(folder), "mpg": mpg(folder)}
    for name, model in found.items():
        model.save(folder / f"{name}.npz")
    broken = iris(folder)
    broken.preprocessor.features = broken.preprocessor.features[:3]
    broken.save(folder / "broken.npz")
    return found


@pytest.fixture(scope="module")
def server(folder, models):
    """Several models, a 64 KB body limit, the access log on."""
    running = Server(str(folder / "iris.npz"), str(folder / "mpg.npz"), str(folder / "broken.npz"),
                     "--max-body", "64KB", "--access-log")
    yield running
    assert running.stop() == 0


def _post(server: Server, path: str, body: bytes | str, kind: str = JSON, **params: str) -> httpx.Response:
    return server.client.post(path, content=body, headers={"Content-Type": kind}, params=params)


def _jsonl_predict(model, records, **options) -> list[dict]:
    out = io.StringIO()
    text = "".join(json.dumps(r) + "\n" for r in records)
    predict(model, io.BytesIO(text.encode()), out, fmt="jsonl", input_format="jsonl", **options)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_startup_line_and_health(server, folder):
    assert server.startup == (f"serving iris ({folder / 'iris.npz'}), mpg ({folder / 'mpg.npz'}), broken "
                              f"({folder / 'broken.npz'}) on http://127.0.0.1:{server.port}")
    response = server.client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok", "models": ["iris", "mpg", "broken"]}


def test_predict_json_answers_as_predict_prints(server, models):
    records = [ROW, {**ROW, "petal_length": 1.4, "petal_width": 0.2}]
    for params in ({}, {"proba": "true"}):
        response = _post(server, "/models/iris/predict", json.dumps(records), **params)
        assert response.status_code == 200 and response.headers["content-type"] == JSON
        expected = _jsonl_predict(models["iris"], records, proba=bool(params))
        assert response.json() == {"predictions": expected}
    one = _post(server, "/models/iris/predict", json.dumps({"rows": [ROW]}))
    assert one.json()["predictions"] == _jsonl_predict(models["iris"], [ROW])


def test_predict_csv_answers_with_csv(server, models):
    body = (DATASETS / "auto_mpg.csv").read_bytes()[:20_000].rsplit(b"\n", 1)[0] + b"\n"
    response = _post(server, "/models/mpg/predict", body, "text/csv")
    out = io.StringIO()
    predict(models["mpg"], io.BytesIO(body), out)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.text == out.getvalue()


@pytest.mark.parametrize("path, body, kind, status, message", [
    ("/models/iris/predict", "[{", JSON, 400, "request: not valid JSON (Expecting property name enclosed in double "
     'quotes, line 1 column 3); expected a list of records or {"rows": [...]}'),
    ("/models/iris/predict", "x=1", "application/x-www-form-urlencoded", 415, "request: content type "
     "'application/x-www-form-urlencoded'; send the rows as application/json"),
    ("/models/iris/predict", json.dumps([{"sepal_length": 1, "sepal_width": 2}]), JSON, 422,
     "request: line 1: no keys 'petal_length', 'petal_width' (keys: sepal_length, sepal_width)"),
    ("/models/iris/predict", json.dumps([{**ROW, "sepal_width": "wide"}]), JSON, 422,
     "request: column 'sepal_width' line 1: 'wide' is not a number"),
    ("/models/mpg/predict", "cylinders,weight\n4,2000\n", "text/csv", 422, "request: no feature columns "
     "'horsepower', 'model_year', 'origin'"),
    ("/models/iris/predict?threshold=0.3", json.dumps([ROW]), JSON, 422, "threshold needs a model with two classes"),
    ("/models/broken/predict", json.dumps([ROW]), JSON, 500, "broken: the model cannot predict (ValueError: matmul"),
    ("/predict", json.dumps([ROW]), JSON, 404, "several models are served (iris, mpg, broken); use "
     "/models/NAME/..."),
    ("/models/nope/predict", json.dumps([ROW]), JSON, 404, "no model named 'nope'; serving: iris, mpg, broken"),
])
def test_errors_are_json_with_the_clis_message(server, path, body, kind, status, message):
    response = server.client.post(path, content=body, headers={"Content-Type": kind})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON
    error = response.json()["error"]
    assert error.startswith(message) and "\n" not in error and "Traceback" not in error
    assert server.client.get("/health").status_code == 200  # never takes the server down


def test_a_body_over_the_limit_is_413_before_and_while_reading(server):
    big = json.dumps([ROW] * 1500).encode()  # ~110 KB, over the 64 KB limit
    response = _post(server, "/models/iris/predict", big)
    assert response.status_code == 413
    assert response.json()["error"].startswith(f"request: body of {len(big)} bytes is over the limit of 64000 bytes")

    def chunks():  # no Content-Length: the limit holds while the body streams in
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    streamed = server.client.post("/models/iris/predict", content=chunks(), headers={"Content-Type": JSON})
    assert streamed.status_code == 413
    assert streamed.json()["error"].startswith("request: body over the limit of 64000 bytes")
    assert _post(server, "/models/iris/predict", json.dumps([ROW] * 100)).status_code == 200


def test_unknown_endpoints_and_methods_are_json(server):
    missing = server.client.get("/nothing")
    assert missing.status_code == 404 and missing.json()["error"].startswith("no endpoint GET /nothing")
    wrong = server.client.get("/models/iris/predict")
    assert wrong.status_code == 405 and wrong.json() == {"error": "Method Not Allowed"}


def test_model_describes_columns_classes_and_training(server, models):
    info = server.client.get("/models/mpg").json()
    assert [c["name"] for c in info["columns"]] == ["cylinders", "horsepower", "weight", "model_year", "origin"]
    assert info["columns"][4] == {"name": "origin", "kind": "categorical", "categories": ["Europe", "Japan", "USA"]}
    assert info["task"] == "regression" and info["target"] == "mpg" and "classes" not in info
    assert info["training"]["epochs"] == 10 and info["training"]["last_epoch"]["epoch"] == 10
    iris_info = server.client.get("/models/iris").json()
    assert iris_info["classes"] == ["setosa", "versicolor", "virginica"]
    assert [m["name"] for m in server.client.get("/models").json()["models"]] == ["iris", "mpg", "broken"]
    assert server.client.get("/model").status_code == 404  # several models: name one
    assert server.client.get("/docs").status_code == 200  # FastAPI's OpenAPI page
    spec = server.client.get("/openapi.json").json()["paths"]["/models/{name}/predict"]["post"]
    assert set(spec["requestBody"]["content"]) == {"application/json", "text/csv"}
    assert {"name", "proba", "threshold"} <= {p["name"] for p in spec["parameters"]}


def test_metrics_count_requests_rows_latency_and_errors(server):
    _post(server, "/models/iris/predict", json.dumps([ROW] * 3))
    _post(server, "/models/iris/predict", "{")
    text = server.client.get("/metrics").text
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line and not line.startswith("#")}
    assert samples['nnctl_requests_total{method="POST",route="/models/{name}/predict",code="200"}'] >= 1
    assert samples['nnctl_rows_total{model="iris"}'] >= 3
    assert samples['nnctl_errors_total{code="400"}'] >= 1
    assert samples['nnctl_request_duration_seconds_count{route="/models/{name}/predict"}'] >= 2
    assert samples['nnctl_model_reloads_total{model="iris",result="loaded"}'] == 0


def test_access_log_has_one_line_per_request(server):
    _post(server, "/models/iris/predict", json.dumps([ROW] * 7))
    line = server.wait_for_line('"POST /models/iris/predict" 200 7 rows')
    assert line.startswith('127.0.0.1 "POST /models/iris/predict" 200 7 rows ') and line.endswith(" ms")


def test_hot_swap_under_concurrent_requests(tmp_path, folder):
    old, new = iris(folder, epochs=3, seed=1), iris(folder, epochs=3, seed=2)
    path = tmp_path / "model.npz"
    old.save(path)
    records = [ROW, {**ROW, "petal_length": 1.4, "petal_width": 0.2}, {**ROW, "petal_length": 4.0}]
    body = json.dumps(records).encode()
    expected = {name: answer(model, body, JSON, Options(proba=True)).body
                for name, model in (("old", old), ("new", new))}
    assert expected["old"] != expected["new"]
    served = Server(str(path))
    answers: list[tuple[float, str]] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=served.url, timeout=30) as http:
            while not stop.is_set():
                started = time.monotonic()
                response = http.post("/predict", content=body, headers={"Content-Type": JSON},
                                     params={"proba": "true"})
                which = next((k for k, v in expected.items() if response.status_code == 200
                              and response.content == v), f"{response.status_code} {response.text}")
                answers.append((started, which))

    threads = [threading.Thread(target=client) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        new.save(tmp_path / "model.tmp.npz")  # as `nnctl train` writes: a temp file, renamed over the old one
        os.replace(tmp_path / "model.tmp.npz", path)
        swapped = served.wait_for_line("reloaded model from")
        after = time.monotonic()  # the swap is done before it is logged
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert swapped == f"reloaded model from {path}"
    assert {which for _, which in answers} == {"old", "new"}  # never an error, never a mix
    assert all(which == "new" for started, which in answers if started > after)
    assert any(started > after for started, _ in answers)
    # a replacement that does not load: logged, and the model it replaced keeps answering
    (tmp_path / "model.tmp.npz").write_bytes(b"not a model")
    os.replace(tmp_path / "model.tmp.npz", path)
    served.wait_for_line("warning: ")
    response = served.client.post("/predict", content=body, headers={"Content-Type": JSON}, params={"proba": "true"})
    assert response.content == expected["new"]
    assert served.client.get("/model").json()["name"] == "model"
    assert served.stop() == 0


def test_sigterm_finishes_the_request_in_flight_and_exits_0(folder, models):
    served = Server(str(folder / "iris.npz"))
    body = json.dumps([ROW] * 2000).encode()
    head = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {JSON}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as connection:
        connection.sendall(head + body[:1000])  # the request is in flight: its body has not all arrived
        time.sleep(0.3)
        served.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert served.process.poll() is None  # still finishing the request
        connection.sendall(body[1000:])
        reply = b""
        while not reply.endswith(b"]}") and (part := connection.recv(1 << 16)):
            reply += part
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert len(json.loads(reply.split(b"\r\n\r\n", 1)[1])["predictions"]) == 2000
    assert served.stop() == 0  # already stopping: waits for it
    with pytest.raises(OSError):  # and no longer accepts
        socket.create_connection(("127.0.0.1", served.port), timeout=2).close()


def test_ctrl_c_exits_0(folder, models):
    served = Server(str(folder / "iris.npz"))
    assert served.client.get("/model").json()["name"] == "iris"
    assert served.stop(signal.SIGINT) == 0


@pytest.mark.parametrize("args, message", [
    (["missing.npz"], "error: missing.npz: model file not found"),
    (["IRIS", "--max-body", "lots"], "error: --max-body lots: expected a size like 10MB"),
    (["IRIS", "IRIS"], "error: IRIS: another model is also named 'iris'"),
])
def test_bad_arguments_exit_2_with_one_line(folder, models, args, message):
    from typer.testing import CliRunner

    from nnctl.cli import app

    path = str(folder / "iris.npz")
    result = CliRunner().invoke(app, ["serve", *(path if a == "IRIS" else a for a in args)])
    assert result.exit_code == 2 and result.output.startswith(message.replace("IRIS", path))
    assert result.output.count("\n") == 1


def test_workers_share_the_port_and_stop_on_sigterm(folder, models):
    served = Server(str(folder / "iris.npz"), "--workers", "2")
    assert served.startup.endswith(" with 2 workers")
    answers = {_post(served, "/predict", json.dumps([ROW])).text for _ in range(10)}
    assert answers == {json.dumps({"predictions": _jsonl_predict(models["iris"], [ROW])})}
    assert served.stop() == 0


def test_without_the_serve_extra_it_says_how_to_install_it(monkeypatch, folder, models):
    from typer.testing import CliRunner

    from nnctl.cli import app

    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi raises ImportError
    result = CliRunner().invoke(app, ["serve", str(folder / "iris.npz")])
    assert result.exit_code == 2
    assert "nnctl serve needs the 'fastapi' package, which is not installed; install it with: pip install " \
           "'nnctl[serve]'" in result.output


def test_a_port_in_use_exits_2_naming_it(folder, models):
    from typer.testing import CliRunner

    from nnctl.cli import app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", str(folder / "iris.npz"), "--port", str(port)])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: --port {port}: cannot listen on 127.0.0.1:{port} (Address already in use)")
