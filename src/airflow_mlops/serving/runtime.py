"""The state of one model-server process: models, router, log writer, feedback store and metrics.

:class:`ServingRuntime` loads the champion and challenger, polls the registry, scores shadow
requests in the background and drains the prediction log on shutdown. The routes read it; the
app (:func:`airflow_mlops.serving.app.create_app`) starts and stops it with the server.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import ModelRegistryError
from airflow_mlops.serving import traffic_tag
from airflow_mlops.serving.arm_inputs import ArmInputs
from airflow_mlops.serving.batching import MicroBatcher
from airflow_mlops.serving.durable_log import DurableLogWriter
from airflow_mlops.serving.feedback_store import FeedbackStore
from airflow_mlops.serving.log_shipper import PredictionLogWriter
from airflow_mlops.serving.metrics import Metrics
from airflow_mlops.serving.models import ModelRegistry
from airflow_mlops.serving.predictors import first_line
from airflow_mlops.serving.repeated_failure import RepeatedFailure
from airflow_mlops.serving.request_ids import RecentIds
from airflow_mlops.serving.routing import CHALLENGER, CHAMPION, SHADOW, Router
from airflow_mlops.serving.traffic_tag import TRAFFIC_TAG

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from airflow_mlops.serving.config import ServingConfig
    from airflow_mlops.serving.models import LoadedModel, ModelSet
    from airflow_mlops.serving.schema import FieldError

log = logging.getLogger(__name__)

_SHADOW_MAX_QUEUE = 50_000
LOG_SERIES = "mlops_serving_log_"  # the prediction log's gauges: one log per process, shared by its models


TRAFFIC_WRITE_WAIT_SECONDS = 5.0  # how long a stopping server waits for its traffic split to reach the registry


class ServingRuntime:
    """State of one server process: models, router, log writer, metrics and background tasks."""

    def __init__(
        self, config: ServingConfig, registry: ModelRegistry | None = None, *, shared: SharedState | None = None
    ) -> None:
        self.config = config
        self.metrics = Metrics()
        self.router = Router(config.model_name, config.challenger_share, config.shadow)
        self.registry = registry or ModelRegistry(config)
        self.models: ModelSet | None = None
        self.log_writer: PredictionLogWriter | DurableLogWriter | None = None
        self.feedback: FeedbackStore | None = None
        self.recent_ids = RecentIds(config.recent_ids)
        # one model of a multi-model process: the log and the per-model state outlive this runtime
        self._owns_log = shared is None
        if shared is not None:
            self.metrics, self.router, self.recent_ids = shared.metrics, shared.router, shared.recent_ids
            self.log_writer, self.feedback = shared.log_writer, shared.feedback
        elif config.postgres_dsn:
            self.log_writer = log_writer_for(config, config.postgres_dsn)
            self.feedback = FeedbackStore(config.postgres_dsn, table=config.feedback_table, log_table=config.log_table)
        self.batcher: MicroBatcher | None = None
        self.registry_status: dict[str, Any] = {"ok": None, "error": None, "last_attempt": None, "last_success": None}
        self.started_at = time.time()
        self._reload_lock: asyncio.Lock | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._shadow: list[tuple[str, str | None, Any, float, str | None]] = []
        self._shadow_wake: asyncio.Event | None = None
        self._inputs: ArmInputs | None = None
        self._inputs_key: tuple[ModelSet, bool] | None = None
        self.lost_on_shutdown = 0
        self._traffic_lock = asyncio.Lock()
        self._traffic_writes: set[asyncio.Task[None]] = set()
        self._registry_failures = RepeatedFailure(log)

    # ----- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._reload_lock = asyncio.Lock()
        self._shadow_wake = asyncio.Event()
        self.batcher = MicroBatcher(self.metrics)
        self.batcher.start()
        if self._owns_log:
            log.info("%s", logging_text(self.config, self.log_writer))
        if self.log_writer is not None and self._owns_log:
            self.log_writer.start()
        self._tasks = [
            loop.create_task(self._registry_loop(), name="registry-poller"),
            loop.create_task(self._shadow_loop(), name="shadow-scorer"),
        ]

    async def stop(self) -> None:
        """Stop background work, score queued shadow requests, then drain the prediction log."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("background task %s failed", task.get_name())
        self._tasks = []
        if self._traffic_writes:  # a split just set: let it reach the registry, for the replica that replaces this one
            await asyncio.wait(self._traffic_writes, timeout=TRAFFIC_WRITE_WAIT_SECONDS)
        self._score_shadow()
        if self.batcher is not None:
            await self.batcher.stop()
        if not self._owns_log:
            return
        if self.log_writer is not None:
            self.lost_on_shutdown = await self.log_writer.stop(self.config.drain_timeout)
            log.info("%s", stopped_text(self.log_writer, self.lost_on_shutdown))
        if self.feedback is not None:
            await self.feedback.close()

    def forget_models(self) -> None:
        """Drop the loaded versions of a stopped runtime, so they are freed even while it is referenced."""
        self.models = None
        self._inputs = self._inputs_key = None

    async def _registry_loop(self) -> None:
        while True:
            await self.reload("startup" if self.models is None else "poll")
            if self.models is None:
                await asyncio.sleep(self.config.retry_seconds)
                continue
            if self.config.poll_seconds <= 0:
                return
            await asyncio.sleep(self.config.poll_seconds)

    async def reload(self, trigger: str) -> tuple[bool, str | None]:
        """Re-read the aliases and swap in changed versions. Returns (changed, error)."""
        assert self._reload_lock is not None, "start() the runtime first"
        async with self._reload_lock:
            current = self.models
            self.registry_status["last_attempt"] = time.time()
            try:
                new = await asyncio.to_thread(self.registry.resolve, current, retry_failed=trigger == "admin")
            except Exception as err:
                message = str(err) if isinstance(err, ModelRegistryError) else f"{type(err).__name__}: {err}"
                self.registry_status.update(ok=False, error=message)
                self.metrics.inc("mlops_serving_reloads_total", (("trigger", trigger), ("outcome", "error")))
                serving = f"still serving {versions_text(current)}" if current else "no model loaded yet"
                self._registry_failures.failed(f"reload failed, {serving}: {message}", always=trigger == "admin")
                return False, message
            self._registry_failures.succeeded(f"registry read again (reload: {trigger})")
            self.registry_status.update(ok=True, error=None, last_success=time.time())
            self._follow_traffic_tag()
            changed = new is not current
            if new.challenger_error and new.challenger_error != (current.challenger_error if current else None):
                log.warning("reload (%s): %s", trigger, new.challenger_error)
            if changed:
                self.models = new
                log.info("now serving %s (reload: %s)", versions_text(new), trigger)
                # Everything loaded so far (mlflow, sklearn, the models: ~1M objects) is permanent:
                # take it out of the cyclic GC, whose full passes over it stalled requests ~150 ms.
                # Collect first, or the load's garbage cycles (~400 objects) are frozen for good: in
                # a multi-model server that unloads and reloads models, ~300 KiB a load. Only what
                # is not frozen yet is traversed, so after the first load this pass is short.
                gc.collect()
                gc.freeze()
            outcome = "changed" if changed else "unchanged"
            self.metrics.inc("mlops_serving_reloads_total", (("trigger", trigger), ("outcome", outcome)))
            return changed, None

    def _follow_traffic_tag(self) -> None:
        """Apply the registry's traffic split when it was set after the split this replica has.

        Each split carries the time it was set (``set_at``), kept on the router: a tag read before
        this replica's own newer split was written, or a stale one after a write that failed, is
        older and not followed.
        """
        split = traffic_tag.decode(self.registry.tags.get(TRAFFIC_TAG))
        if split is None or split.set_at <= self.router.set_at:
            return
        self.router.set(challenger_share=split.challenger_share, shadow=split.shadow, set_at=split.set_at)
        log.info("traffic from the registry: challenger_share=%s shadow=%s", split.challenger_share, split.shadow)

    def keep_traffic(self) -> None:
        """Write the split to the registry in the background, for restarts and the other replicas.

        The answer does not wait for the registry; a failed write is a warning.
        """
        task = asyncio.get_running_loop().create_task(self._write_traffic(), name="traffic-tag")
        self._traffic_writes.add(task)
        task.add_done_callback(self._traffic_writes.discard)

    async def _write_traffic(self) -> None:
        async with self._traffic_lock:  # one write at a time, each of the split as it is then: the last one wins
            router = self.router
            text = traffic_tag.encode(router.challenger_share, router.shadow, router.set_at)
            try:
                await asyncio.to_thread(self.registry.set_tag, TRAFFIC_TAG, text)
            except Exception as err:
                log.warning(
                    "could not keep the traffic split in the registry (a restart reverts it): %s", first_line(err)
                )

    async def wait_ready(self, seconds: float = 60.0) -> ModelSet:
        """Wait until a champion is loaded (for tests and embedding)."""
        deadline = time.monotonic() + seconds
        while self.models is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no model loaded after {seconds}s: {self.registry_status['error']}")
            await asyncio.sleep(0.05)
        return self.models

    # ----- scoring ---------------------------------------------------------------------------

    def arm_inputs(self, models: ModelSet) -> ArmInputs:
        """How requests are validated for the arms active now (rebuilt when models or split change)."""
        router = self.router
        active = models.challenger is not None and (router.shadow or router.challenger_share > 0.0)
        key = self._inputs_key
        if self._inputs is None or key is None or key[0] is not models or key[1] != active:
            self._inputs = ArmInputs.of(models, active)
            self._inputs_key = (models, active)
        return self._inputs

    def score(self, model: LoadedModel, rows: list[list[Any]]) -> Awaitable[list[tuple[Any, Any, Any]]]:
        """The outputs of ``rows``: one row joins the next micro-batch, more are scored now (await either)."""
        if len(rows) == 1 and self.batcher is not None and self.config.micro_batch:
            return self.batcher.submit(model, rows)
        done: asyncio.Future[list[tuple[Any, Any, Any]]] = asyncio.get_running_loop().create_future()
        done.set_result(model.predict(rows))
        return done

    def shadow_submit(self, request_id: str, key: str | None, features: Any, body: str | None = None) -> None:
        if len(self._shadow) >= _SHADOW_MAX_QUEUE:
            self.metrics.inc("mlops_serving_shadow_errors_total", (("reason", "queue_full"),))
            return
        self._shadow.append((request_id, key, features, time.time(), body))
        if self._shadow_wake is not None:
            self._shadow_wake.set()

    async def _shadow_loop(self) -> None:
        assert self._shadow_wake is not None
        while True:
            await self._shadow_wake.wait()
            await asyncio.sleep(0)  # answer the champion requests first, then score them together
            self._shadow_wake.clear()
            self._score_shadow()

    def _score_shadow(self) -> None:
        items, self._shadow = self._shadow, []
        models = self.models
        if not items or models is None or models.challenger is None:
            return
        challenger = models.challenger
        accepted = self.arm_inputs(models).accepted  # the champion's columns are no error here
        rows: list[list[Any]] = []
        kept: list[tuple[str, str | None, Any, float, str | None]] = []
        for item in items:
            errors: list[FieldError] = []
            row = challenger.schema.validate(item[2], ("features",), errors, accepted)
            if row is None:
                self.metrics.inc("mlops_serving_shadow_errors_total", (("reason", "invalid_for_challenger"),))
                continue
            rows.append(row)
            kept.append(item)
        if not rows:
            return
        started = time.perf_counter()
        try:
            outputs = challenger.predict(rows)
        except Exception:
            log.exception("shadow scoring with version %s failed", challenger.version)
            self.metrics.inc("mlops_serving_shadow_errors_total", (("reason", "model_error"),), len(rows))
            return
        latency = (time.perf_counter() - started) * 1000
        self.metrics.inc("mlops_serving_predictions_total", (("arm", SHADOW),), len(rows))
        writer = self.log_writer
        if writer is None:
            return
        if isinstance(writer, DurableLogWriter) and writer.depth_bytes >= writer.max_bytes:
            self.metrics.inc("mlops_serving_shadow_errors_total", (("reason", "log_spool_full"),), len(rows))
            return
        for (request_id, key, features, ts, body), (pred, proba, score) in zip(kept, outputs, strict=True):
            writer.append(  # LogRow order; the body (if any) carries the features
                (
                    request_id,
                    ts,
                    challenger.name,
                    challenger.version,
                    SHADOW,
                    key,
                    None if body is not None else features,
                    pred,
                    proba,
                    score,
                    latency,
                    body,
                    None,
                )
            )

    # ----- reporting -------------------------------------------------------------------------

    def observe_request(self, endpoint: str, arm: str, status: int, started: float) -> float:
        """Count a finished request and its latency since ``started`` (``perf_counter``); returns milliseconds."""
        elapsed = time.perf_counter() - started
        self.metrics.request(endpoint, arm, status, elapsed)
        return elapsed * 1000

    def ready_payload(self) -> dict[str, Any]:
        models = self.models
        router = self.router
        has_challenger = models is not None and models.challenger is not None
        payload: dict[str, Any] = {
            # a full or unwritable log spool refuses every prediction: not ready (a load balancer goes elsewhere)
            "ready": models is not None
            and not (isinstance(self.log_writer, DurableLogWriter) and self.log_writer.refusing),
            "model": self.config.model_name,
            "versions": models.versions() if models else {"champion": None, "challenger": None},
            "arms": {
                "champion": models.champion.describe() if models else None,
                "challenger": models.challenger.describe() if models and models.challenger else None,
            },
            "challenger_alias_version": models.challenger_alias_version if models else None,
            "challenger_error": models.challenger_error if models else None,
            "challenger_share": router.challenger_share,
            "shadow": router.shadow,
            "effective_challenger_share": router.challenger_share if has_challenger and not router.shadow else 0.0,
            "registry": {**self.registry_status, "tracking_uri": self.config.tracking_uri},
            "logging": self._logging_status(),
        }
        if models is not None:
            payload["signature"] = models.champion.schema.describe()
        return payload

    def _logging_status(self) -> dict[str, Any]:
        writer = self.log_writer
        if writer is None:
            return {"enabled": False}
        status: dict[str, Any] = {
            "enabled": True,
            "durability": "spool" if isinstance(writer, DurableLogWriter) else "memory",
            "table": writer.table,
            "queue_depth": writer.depth,
            "written": writer.written,
            "dropped": writer.dropped,
            "dropped_by": dict(writer.dropped_by),
            "write_errors": writer.errors,
            "last_error": writer.last_error,
        }
        if isinstance(writer, DurableLogWriter):
            status.update(
                spool_dir=str(writer.spool.folder),
                spool_bytes=writer.depth_bytes,
                spool_max_bytes=writer.max_bytes,
                replayed_duplicates=writer.duplicates,
                refused=writer.refused,
                spool_error=writer.spool_error,
            )
        return status

    def render_metrics(self) -> str:
        """Every series with the ``model`` label a multi-model server gives it; the prediction log's without."""
        model = (("model", self.config.model_name),)
        gauges = [
            (name, labels if name.startswith(LOG_SERIES) or labels[:1] == model else model + labels, value)
            for name, labels, value in self.gauges()
        ]
        return self.metrics.render(gauges, base=model)

    def gauges(self) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
        """The gauges of ``/metrics``, computed now."""
        gauges: list[tuple[str, tuple[tuple[str, str], ...], float]] = []
        router = self.router
        gauges.append(("mlops_serving_challenger_share", (), router.challenger_share))
        gauges.append(("mlops_serving_shadow_enabled", (), 1.0 if router.shadow else 0.0))
        ok = self.registry_status["ok"]
        gauges.append(("mlops_serving_registry_up", (), 1.0 if ok else 0.0))
        if self.registry_status["last_success"]:
            gauges.append(
                ("mlops_serving_last_reload_success_timestamp_seconds", (), self.registry_status["last_success"])
            )
        models = self.models
        if models is not None:
            for arm, model in ((CHAMPION, models.champion), (CHALLENGER, models.challenger)):
                if model is not None:
                    labels = (
                        ("model", model.name),
                        ("arm", arm),
                        ("version", model.version),
                        ("fast_path", str(model.fast_path).lower()),
                    )
                    gauges.append(("mlops_serving_model_info", labels, 1.0))
            gauges.append(("mlops_serving_challenger_load_failed", (), 1.0 if models.challenger_error else 0.0))
        writer = self.log_writer
        gauges.append(("mlops_serving_log_queue_depth", (), float(writer.depth if writer else 0)))
        if writer is not None:
            gauges.append(("mlops_serving_log_rows_written_total", (), float(writer.written)))
            for reason, count in writer.dropped_by.items():
                gauges.append(("mlops_serving_log_rows_dropped_total", (("reason", reason),), float(count)))
            gauges.append(("mlops_serving_log_write_errors_total", (), float(writer.errors)))
        if isinstance(writer, DurableLogWriter):
            gauges.append(("mlops_serving_log_spool_bytes", (), float(writer.depth_bytes)))
            gauges.append(("mlops_serving_log_spool_rows", (), float(writer.spool.depth_rows)))
            gauges.append(("mlops_serving_log_spool_max_bytes", (), float(writer.max_bytes)))
            gauges.append(("mlops_serving_log_spool_refused_total", (), float(writer.refused)))
            gauges.append(("mlops_serving_log_rows_replayed_duplicates_total", (), float(writer.duplicates)))
        return gauges


@dataclass
class SharedState:
    """What one model of a multi-model process keeps across unload and reload, and the shared log."""

    metrics: Metrics
    router: Router
    recent_ids: RecentIds
    log_writer: PredictionLogWriter | DurableLogWriter | None = None
    feedback: FeedbackStore | None = None


def log_writer_for(config: ServingConfig, dsn: str) -> PredictionLogWriter | DurableLogWriter:
    """The prediction log the config asks for: the durable spool, or the in-memory queue."""
    if config.log_durability == "spool":
        return DurableLogWriter(
            dsn,
            config.spool_dir,
            table=config.log_table,
            max_bytes=config.log_spool_max_bytes,
            flush_rows=config.log_flush_rows,
            flush_ms=config.log_flush_ms,
        )
    return PredictionLogWriter(
        dsn,
        table=config.log_table,
        flush_rows=config.log_flush_rows,
        flush_ms=config.log_flush_ms,
        max_queue=config.log_max_queue,
    )


def logging_text(config: ServingConfig, writer: PredictionLogWriter | DurableLogWriter | None) -> str:
    """Where answered predictions go, for the startup log."""
    if writer is None:
        return "prediction log: off (no --postgres-dsn): no answer is logged, /feedback answers 503"
    if isinstance(writer, DurableLogWriter):
        return f"prediction log: table {config.log_table}, each answer on disk in {writer.spool.folder} first"
    return (
        f"prediction log: table {config.log_table}, in memory (up to {writer.max_queue} rows wait; "
        "a crash loses those, --log-durability spool keeps them)"
    )


def stopped_text(writer: PredictionLogWriter | DurableLogWriter, lost: int) -> str:
    """What the prediction log did, for the shutdown log: written, lost at shutdown, dropped before."""
    dropped = ", ".join(f"{count} {why}" for why, count in writer.dropped_by.items() if count) or "none"
    return (
        f"prediction log stopped: {writer.written} rows written since the start, {lost} lost at shutdown; "
        f"dropped before: {dropped}"
    )


def versions_text(models: ModelSet | None) -> str:
    """``champion vN[, challenger vM]``, or ``nothing``."""
    if models is None:
        return "nothing"
    text = f"champion v{models.champion.version}"
    return text + (f", challenger v{models.challenger.version}" if models.challenger else "")
