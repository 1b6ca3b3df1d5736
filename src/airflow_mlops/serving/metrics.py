"""Prometheus text exposition (format 0.0.4), written by hand: counters, gauges and histograms.

prometheus_client is not a dependency; the server needs a handful of series and each update must
cost next to nothing on the request path (a dict lookup and an add).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

Labels = tuple[tuple[str, str], ...]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096)

HELP = {
    "mlops_serving_requests_total": ("counter", "HTTP requests by endpoint, arm and status code."),
    "mlops_serving_predictions_total": ("counter", "Rows scored, by arm (shadow included)."),
    "mlops_serving_request_latency_seconds": ("histogram", "Server-side request latency by endpoint and arm."),
    "mlops_serving_predict_batch_rows": ("histogram", "Rows per model call (micro-batches and batch requests)."),
    "mlops_serving_shadow_errors_total": ("counter", "Shadow scorings that failed, by reason."),
    "mlops_serving_reloads_total": ("counter", "Registry reloads by trigger and outcome (changed, unchanged, error)."),
    "mlops_serving_registry_up": ("gauge", "1 if the last registry reload succeeded, else 0."),
    "mlops_serving_last_reload_success_timestamp_seconds": ("gauge", "Unix time of the last successful reload."),
    "mlops_serving_model_info": ("gauge", "Loaded model version per arm (value 1); fast_path says how it predicts."),
    "mlops_serving_challenger_share": ("gauge", "Configured share of traffic routed to the challenger."),
    "mlops_serving_shadow_enabled": ("gauge", "1 when the challenger scores in shadow mode."),
    "mlops_serving_log_queue_depth": ("gauge", "Prediction log rows waiting to be written."),
    "mlops_serving_log_rows_written_total": ("counter", "Prediction log rows written to Postgres."),
    "mlops_serving_log_rows_dropped_total": (
        "counter",
        "Prediction log rows not stored, by reason: queue_full (the memory queue was full), duplicate_id "
        "(another answer held its request id), rejected (Postgres refused the row).",
    ),
    "mlops_serving_log_write_errors_total": ("counter", "Failed prediction log batch writes (rows are retried)."),
    "mlops_serving_feedback_total": ("counter", "Feedback labels by outcome (matched, pending, error)."),
    "mlops_serving_log_spool_bytes": ("gauge", "Bytes in the prediction log spool not yet confirmed by Postgres."),
    "mlops_serving_log_spool_rows": ("gauge", "Rows in the prediction log spool not yet confirmed by Postgres."),
    "mlops_serving_log_spool_max_bytes": ("gauge", "The spool's bound: at it, predictions get 503."),
    "mlops_serving_log_spool_refused_total": ("counter", "Predictions refused (503) because the spool was full."),
    "mlops_serving_model_loaded": ("gauge", "1 while the model is loaded in a multi-model server, else 0."),
    "mlops_serving_model_loads_total": ("counter", "Times a multi-model server loaded the model."),
    "mlops_serving_model_unloads_total": (
        "counter",
        "Times a multi-model server unloaded the model (LRU, under a bound).",
    ),
    "mlops_serving_resident_bytes": ("gauge", "Resident memory of the server process."),
    "mlops_serving_log_rows_replayed_duplicates_total": (
        "counter",
        "Spooled rows Postgres already held (a replay after a crash); skipped.",
    ),
}


class Histogram:
    """Bucket counts (non-cumulative while recording), sum and count."""

    __slots__ = ("bounds", "counts", "count", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value


class Metrics:
    """In-process metric store; :meth:`render` produces the Prometheus text format."""

    def __init__(self) -> None:
        self.counters: dict[tuple[str, Labels], float] = {}
        self.histograms: dict[tuple[str, Labels], Histogram] = {}
        # (endpoint, arm, status) -> the request counter's key and the latency histogram
        self._requests: dict[tuple[str, str, int], tuple[tuple[str, Labels], Histogram]] = {}

    def request(self, endpoint: str, arm: str, status: int, seconds: float) -> None:
        """Count one finished request and observe its latency: two series, looked up once per label set."""
        series = self._requests.get((endpoint, arm, status))
        if series is None:
            labels = (("endpoint", endpoint), ("arm", arm))
            series = self._requests[(endpoint, arm, status)] = (
                ("mlops_serving_requests_total", (*labels, ("status", str(status)))),
                self.histogram("mlops_serving_request_latency_seconds", labels),
            )
        key, histogram = series
        counters = self.counters
        counters[key] = counters.get(key, 0.0) + 1.0
        histogram.observe(seconds)

    def refused(self, status: int) -> None:
        """Count a request answered before any endpoint took it (404, 405, the body limit's 400/413/415, a 500)."""
        self.inc("mlops_serving_requests_total", (("endpoint", "any"), ("arm", "none"), ("status", str(status))))

    def inc(self, name: str, labels: Labels = (), value: float = 1.0) -> None:
        key = (name, labels)
        self.counters[key] = self.counters.get(key, 0.0) + value

    def observe(self, name: str, labels: Labels, value: float, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.histogram(name, labels, bounds).observe(value)

    def histogram(self, name: str, labels: Labels, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> Histogram:
        key = (name, labels)
        hist = self.histograms.get(key)
        if hist is None:
            hist = self.histograms[key] = Histogram(bounds)
        return hist

    def value(self, name: str, **labels: str) -> float:
        """Sum of a counter over the series matching ``labels`` (for tests and /ready)."""
        wanted = set(labels.items())
        return sum(v for (n, lbl), v in self.counters.items() if n == name and wanted <= set(lbl))

    def render(self, gauges: Iterable[tuple[str, Labels, float]] = (), base: Labels = ()) -> str:
        """All series in the text exposition format; ``gauges`` are computed by the caller now.

        ``base`` labels go first on every counter and histogram series (a server's ``model``).
        """
        series: dict[str, list[str]] = {}
        for (name, labels), value in sorted(self.counters.items()):
            series.setdefault(name, []).append(f"{name}{_labels(base + labels)} {_num(value)}")
        for (name, own), hist in sorted(self.histograms.items(), key=lambda item: item[0]):
            labels = base + own
            lines = series.setdefault(name, [])
            cumulative = 0
            for bound, count in zip((*hist.bounds, float("inf")), hist.counts, strict=True):
                cumulative += count
                le = "+Inf" if bound == float("inf") else _num(bound)
                lines.append(f"{name}_bucket{_labels((*labels, ('le', le)))} {cumulative}")
            lines.append(f"{name}_sum{_labels(labels)} {_num(hist.sum)}")
            lines.append(f"{name}_count{_labels(labels)} {hist.count}")
        for name, labels, value in gauges:
            series.setdefault(name, []).append(f"{name}{_labels(labels)} {_num(value)}")
        out: list[str] = []
        for name in sorted(series):
            kind, text = HELP.get(name, ("untyped", name))
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(series[name])
        return "\n".join(out) + "\n"


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))
