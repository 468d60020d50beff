"""The Prometheus text exposition, parsed back line by line."""

from __future__ import annotations

from nnctl.serve.metrics import BUCKETS, Metrics


def _samples(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def test_counters_histogram_and_escaping():
    metrics = Metrics()
    metrics.observe("POST", "/predict", 200, 0.0004)
    metrics.observe("POST", "/predict", 200, 0.02)
    metrics.observe("POST", "/predict", 422, 3.0)
    metrics.predicted('we"ird', 5)
    text = metrics.text([("iris", 2, 1)])
    samples = _samples(text)
    assert samples['nnctl_requests_total{method="POST",route="/predict",code="200"}'] == 2
    assert samples['nnctl_errors_total{code="422"}'] == 1
    assert samples['nnctl_rows_total{model="we\\"ird"}'] == 5
    bucket = 'nnctl_request_duration_seconds_bucket{route="/predict",le="%s"}'
    assert samples[bucket % "0.0005"] == 1 and samples[bucket % "0.025"] == 2 and samples[bucket % "2.5"] == 2
    assert samples[bucket % "5.0"] == 3 and samples[bucket % "+Inf"] == 3
    assert samples['nnctl_request_duration_seconds_count{route="/predict"}'] == 3
    assert abs(samples['nnctl_request_duration_seconds_sum{route="/predict"}'] - 3.0204) < 1e-6
    assert samples['nnctl_model_reloads_total{model="iris",result="failed"}'] == 1
    assert len([k for k in samples if k.startswith("nnctl_request_duration_seconds_bucket")]) == len(BUCKETS) + 1
    assert "# TYPE nnctl_request_duration_seconds histogram" in text and text.endswith("\n")
