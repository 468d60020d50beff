"""What a server counts, and its Prometheus text exposition (format 0.0.4), written without prometheus_client.

Counters are plain ints updated on the event loop's thread (one writer, no lock); each worker process of
`--workers N` counts its own requests, as prometheus_client does without its multiprocess mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# latency buckets, seconds: from a single row (well under a millisecond) to a big body (seconds)
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Histogram:
    """Cumulative-bucket histogram of one route's latencies."""

    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    n: int = 0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
                break
        self.total += seconds
        self.n += 1


@dataclass
class Metrics:
    """Requests by route and status, rows predicted by model, latency by route, errors by status."""

    requests: dict[tuple[str, str, int], int] = field(default_factory=dict)  # (method, route, status) -> count
    rows: dict[str, int] = field(default_factory=dict)  # model -> rows predicted
    latency: dict[str, Histogram] = field(default_factory=dict)  # route -> histogram
    errors: dict[int, int] = field(default_factory=dict)  # status >= 400 -> count

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self.latency.get(route)
        if histogram is None:
            histogram = self.latency[route] = Histogram()
        histogram.observe(seconds)
        if status >= 400:
            self.errors[status] = self.errors.get(status, 0) + 1

    def predicted(self, model: str, rows: int) -> None:
        self.rows[model] = self.rows.get(model, 0) + rows

    def text(self, reloads: Iterable[tuple[str, int, int]] = ()) -> str:
        """The exposition; `reloads` is (model, swaps, failed reloads) per served model."""
        lines = ["# HELP nnctl_requests_total HTTP requests answered, by method, route and status.",
                 "# TYPE nnctl_requests_total counter"]
        for (method, route, status), count in sorted(self.requests.items()):
            lines.append(f'nnctl_requests_total{{method="{method}",route="{_label(route)}",code="{status}"}} {count}')
        lines += ["# HELP nnctl_rows_total Rows predicted, by model.", "# TYPE nnctl_rows_total counter"]
        lines += [f'nnctl_rows_total{{model="{_label(m)}"}} {n}' for m, n in sorted(self.rows.items())]
        lines += ["# HELP nnctl_errors_total Requests answered with an error, by status.",
                  "# TYPE nnctl_errors_total counter"]
        lines += [f'nnctl_errors_total{{code="{code}"}} {n}' for code, n in sorted(self.errors.items())]
        lines += ["# HELP nnctl_request_duration_seconds Time from a request's start to its response's end, by route.",
                  "# TYPE nnctl_request_duration_seconds histogram"]
        for route, histogram in sorted(self.latency.items()):
            label, cumulative = _label(route), 0
            for bound, count in zip(BUCKETS, histogram.counts, strict=True):
                cumulative += count
                lines.append(f'nnctl_request_duration_seconds_bucket{{route="{label}",le="{bound}"}} {cumulative}')
            lines.append(f'nnctl_request_duration_seconds_bucket{{route="{label}",le="+Inf"}} {histogram.n}')
            lines.append(f'nnctl_request_duration_seconds_sum{{route="{label}"}} {histogram.total:.6f}')
            lines.append(f'nnctl_request_duration_seconds_count{{route="{label}"}} {histogram.n}')
        lines += ["# HELP nnctl_model_reloads_total Model file replacements, by model and result.",
                  "# TYPE nnctl_model_reloads_total counter"]
        for model, swaps, failures in reloads:
            lines.append(f'nnctl_model_reloads_total{{model="{_label(model)}",result="loaded"}} {swaps}')
            lines.append(f'nnctl_model_reloads_total{{model="{_label(model)}",result="failed"}} {failures}')
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    """A label value escaped as the text format asks: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
