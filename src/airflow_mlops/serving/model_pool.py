"""The models of a multi-model server: loaded on first use, the least recently used unloaded under a bound.

Each registered model has a :class:`ModelSlot`. A loaded slot holds the model's own
:class:`~airflow_mlops.serving.runtime.ServingRuntime` (champion, challenger, registry poller,
shadow scorer) and the model's own app (:func:`~airflow_mlops.serving.app.create_app`), so every
route of a single-model server works per model unchanged. What a model keeps across unload and
reload (its metrics, its split and shadow setting) lives in its
:class:`~airflow_mlops.serving.runtime.SharedState`; the prediction log writer, the feedback store
and the answered request ids are one per process, shared by all models (each log row carries its
model's name; a request id is answered once, by whichever model).

:class:`ModelPool` loads a model on its first request (or all of them at start with ``warmup``)
and, after a load, unloads idle models, least recently used first, while more than
``max_loaded`` models are loaded or the process's resident memory is over ``max_memory_mb``.
A model answering a request is never unloaded; a request for an unloaded model loads it again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import ModelRegistryError
from airflow_mlops.serving.metrics import Metrics
from airflow_mlops.serving.models import ModelRegistry, check_sqlite_stores_exist
from airflow_mlops.serving.request_ids import RecentIds
from airflow_mlops.serving.routing import Router
from airflow_mlops.serving.runtime import (
    LOG_SERIES,
    ServingRuntime,
    SharedState,
    log_writer_for,
    logging_text,
    stopped_text,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from airflow_mlops.serving.config import ServingConfig

log = logging.getLogger(__name__)

LOADED, NOT_LOADED, UNAVAILABLE = "loaded", "not_loaded", "unavailable"


class ModelUnavailable(RuntimeError):
    """The registry gave no model to load; the message says why (a request for it gets 503)."""


@dataclass
class PoolSettings:
    """How many models may stay loaded.

    :param max_loaded: most models loaded at once; ``None``: no count bound.
    :param max_memory_mb: unload idle models while the process's resident memory is above this
        (MiB); ``None``: no memory bound. Freed memory is not always returned to the system at
        once, so this is a target the pool works towards, not a hard cap.
    :param warmup: load every model at start (``/ready`` answers 503 until done) instead of on
        its first request.
    """

    max_loaded: int | None = None
    max_memory_mb: float | None = None
    warmup: bool = False

    def __post_init__(self) -> None:
        if self.max_loaded is not None and self.max_loaded < 1:
            raise ValueError(f"max_loaded_models: expected at least 1, found {self.max_loaded}")
        if self.max_memory_mb is not None and not (math.isfinite(self.max_memory_mb) and self.max_memory_mb > 0):
            raise ValueError(f"max_memory_mb: expected a positive number of MiB, found {self.max_memory_mb}")


def resident_mb() -> float:
    """This process's resident set size in MiB (``/proc/self/statm``)."""
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


class ModelSlot:
    """One registered model of the pool: its settings, its lasting state and, when loaded, its runtime."""

    def __init__(self, config: ServingConfig, shared: SharedState) -> None:
        self.name = config.model_name
        self.config = config
        self.shared = shared
        self.runtime: ServingRuntime | None = None
        self.app: Starlette | None = None
        self.last_used = 0.0
        self.inflight = 0
        self.loads = 0
        self.unloads = 0
        self.lock = asyncio.Lock()
        # the registry gave no model at the last load: (why, monotonic time); the next request tries
        # again after the config's retry_seconds, through acquire, so every load meets the bounds
        self.unavailable: tuple[str, float] | None = None

    @property
    def state(self) -> str:
        """``unavailable``: the last load found no model in the registry (the reason is in ``/ready``).

        A runtime is kept only once its first registry read loaded the models, so a slot with one is loaded.
        """
        if self.runtime is None:
            return UNAVAILABLE if self.unavailable else NOT_LOADED
        return LOADED

    def ready_payload(self) -> dict[str, Any]:
        """The model's own ``/ready`` body when loaded, else its state and split."""
        base = {"state": self.state, "loads": self.loads, "unloads": self.unloads}
        if self.runtime is not None:
            return {**self.runtime.ready_payload(), **base}
        router = self.shared.router
        registry = {"registry": {"ok": False, "error": self.unavailable[0]}} if self.unavailable else {}
        return {"ready": False, "model": self.name, **base, "challenger_share": router.challenger_share,
                "shadow": router.shadow, **registry}  # fmt: skip


class ModelPool:
    """The slots of a multi-model process, with lazy loading and least-recently-used unloading."""

    def __init__(self, configs: list[ServingConfig], settings: PoolSettings | None = None) -> None:
        if not configs:
            raise ValueError("models: give at least one registered model to serve")
        names = [c.model_name for c in configs]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"models: each model may be served once, found {', '.join(repeated)} more than once")
        self.settings = settings or PoolSettings()
        first = configs[0]
        self.log_writer = log_writer_for(first, first.postgres_dsn) if first.postgres_dsn else None
        self.feedback = None
        if first.postgres_dsn:
            from airflow_mlops.serving.feedback_store import FeedbackStore

            self.feedback = FeedbackStore(first.postgres_dsn, table=first.feedback_table, log_table=first.log_table)
        # one set of answered request ids per process: the log holds a request id once, whichever model answered
        self.recent_ids = RecentIds(first.recent_ids)
        self.slots = {c.model_name: ModelSlot(c, self._shared(c)) for c in configs}
        self.warming = False
        self.lost_on_shutdown = 0
        self._mlflow_client: Any = None

    def _shared(self, config: ServingConfig) -> SharedState:
        router = Router(config.model_name, config.challenger_share, config.shadow)
        return SharedState(Metrics(), router, self.recent_ids, self.log_writer, self.feedback)

    @property
    def names(self) -> list[str]:
        return list(self.slots)

    # ----- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        log.info("%s", logging_text(next(iter(self.slots.values())).config, self.log_writer))
        if self.log_writer is not None:
            self.log_writer.start()
        if self.settings.warmup:
            self.warming = True
            asyncio.get_running_loop().create_task(self._warm_up(), name="model-warmup")

    async def _warm_up(self) -> None:
        try:
            for slot in self.slots.values():
                try:
                    await self.acquire(slot.name)
                except ModelUnavailable:  # said in /ready; the others are warmed all the same
                    continue
                self.release(slot)
        finally:
            self.warming = False

    async def stop(self) -> None:
        """Stop every loaded model, then drain the shared prediction log."""
        for slot in self.slots.values():
            if slot.runtime is not None:
                await slot.runtime.stop()
                slot.runtime = slot.app = None
        if self.log_writer is not None:
            drain = max(s.config.drain_timeout for s in self.slots.values())
            self.lost_on_shutdown = await self.log_writer.stop(drain)
            log.info("%s", stopped_text(self.log_writer, self.lost_on_shutdown))
        if self.feedback is not None:
            await self.feedback.close()

    # ----- use -------------------------------------------------------------------------------

    async def acquire(self, name: str) -> ModelSlot:
        """The slot of ``name``, loaded, counted as answering a request until :meth:`release`."""
        slot = self.slots[name]
        async with slot.lock:
            slot.inflight += 1
            slot.last_used = time.monotonic()
            if slot.runtime is not None:
                return slot
            try:
                await self._load(slot)
            except BaseException:
                slot.inflight -= 1
                raise
        await self._enforce_bounds(keep=slot)
        return slot

    def release(self, slot: ModelSlot) -> None:
        slot.inflight -= 1
        slot.last_used = time.monotonic()

    async def _load(self, slot: ModelSlot) -> None:
        """Start the model's runtime and wait for its first registry read.

        :raises ModelUnavailable: the registry gave no model (no such model, no champion, the
            registry down): no runtime is kept, so nothing loads later outside :meth:`acquire`
            and its bounds; a request after ``retry_seconds`` tries again.
        """
        from airflow_mlops.serving.app import create_app

        if slot.unavailable and time.monotonic() - slot.unavailable[1] < slot.config.retry_seconds:
            raise ModelUnavailable(slot.unavailable[0])
        registry = ModelRegistry(slot.config, self._client() if self._stores_exist(slot) else None)
        limit = self.settings.max_loaded
        # make room first (the count bound is exact), but only for a model the registry can give: a
        # request for one it cannot unloaded a working model for nothing
        if limit is not None and self.loaded_count() >= limit and await self._has_champion(registry):
            while self.loaded_count() >= limit and await self._unload_one(keep=slot):
                pass
        runtime = ServingRuntime(slot.config, registry, shared=slot.shared)
        await runtime.start()
        # the runtime's own poller makes the first registry read (so its reload counts are those
        # of a single-model server); it sets no event, so wait for its outcome here
        while runtime.models is None and runtime.registry_status["ok"] is None:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if runtime.models is None:
            await runtime.stop()
            why = f"no model loaded yet: {runtime.registry_status['error']}"
            slot.unavailable = (why, time.monotonic())
            raise ModelUnavailable(why)
        slot.runtime, slot.app, slot.unavailable = runtime, create_app(slot.config, runtime), None
        slot.loads += 1
        log.info("model %s: %s (load %d)", slot.name, slot.state, slot.loads)

    @staticmethod
    def _stores_exist(slot: ModelSlot) -> bool:
        """Whether a ``sqlite:`` store is there to share a client on (MlflowClient would create a missing one)."""
        try:
            check_sqlite_stores_exist(slot.config)
        except ModelRegistryError:
            return False  # the slot's registry makes its own client once the check passes
        return True

    def _client(self) -> Any:
        """One MlflowClient for every model (each load would otherwise make one, and leave its cycles)."""
        if self._mlflow_client is None:
            from mlflow import MlflowClient

            first = next(iter(self.slots.values())).config
            registry_uri = first.registry_uri or first.tracking_uri
            self._mlflow_client = MlflowClient(tracking_uri=first.tracking_uri, registry_uri=registry_uri)
        return self._mlflow_client

    @staticmethod
    async def _has_champion(registry: ModelRegistry) -> bool:
        try:
            aliases = await asyncio.to_thread(registry.aliases)
        except ModelRegistryError:
            return False
        return registry.config.champion_alias in aliases

    def loaded_count(self) -> int:
        return sum(1 for s in self.slots.values() if s.runtime is not None)

    async def _enforce_bounds(self, keep: ModelSlot) -> None:
        settings = self.settings
        while settings.max_loaded is not None and self.loaded_count() > settings.max_loaded:
            if not await self._unload_one(keep):
                break
        if settings.max_memory_mb is None:
            return
        while resident_mb() > settings.max_memory_mb:
            if not await self._unload_one(keep):
                return

    async def _unload_one(self, keep: ModelSlot) -> bool:
        """Unload the least recently used idle model other than ``keep``; False if there is none."""
        idle = [s for s in self.slots.values() if s is not keep and s.runtime is not None and s.inflight == 0]
        if not idle:
            return False
        await self.unload(min(idle, key=lambda s: s.last_used))
        return True

    async def unload(self, slot: ModelSlot) -> bool:
        """Stop the model's runtime and free its models; False if it is answering a request."""
        async with slot.lock:
            if slot.runtime is None or slot.inflight:
                return False
            runtime, slot.runtime, slot.app = slot.runtime, None, None
            await runtime.stop()
            runtime.forget_models()
            slot.unloads += 1
        # Reference counting frees the unloaded versions (the runtime shell may sit in a reference
        # cycle, frozen with the rest by gc.freeze(), so it must not hold them); no full collection,
        # which held the test process ~0.7 s.
        log.info("model %s: unloaded (least recently used; %.0f MiB resident)", slot.name, resident_mb())
        return True

    # ----- reporting -------------------------------------------------------------------------

    def ready_payload(self) -> dict[str, Any]:
        """Every model with its state: loaded versions per arm and split, or not loaded."""
        settings = self.settings
        return {
            "ready": not self.warming,
            "models": {name: slot.ready_payload() for name, slot in self.slots.items()},
            "loaded": self.loaded_count(),
            "max_loaded_models": settings.max_loaded,
            "max_memory_mb": settings.max_memory_mb,
            "resident_mb": round(resident_mb(), 1),
        }

    def render_metrics(self) -> str:
        """Every model's series with a ``model`` label, the shared log's once."""
        merged = Metrics()
        gauges: list[tuple[str, tuple[tuple[str, str], ...], float]] = []
        shared_log: list[tuple[str, tuple[tuple[str, str], ...], float]] = []
        for name, slot in self.slots.items():
            label = (("model", name),)
            metrics = slot.shared.metrics
            for (metric, labels), value in metrics.counters.items():
                merged.counters[(metric, label + labels)] = value
            for (metric, labels), hist in metrics.histograms.items():
                merged.histograms[(metric, label + labels)] = hist
            gauges.append(("mlops_serving_model_loaded", label, 1.0 if slot.runtime is not None else 0.0))
            gauges.append(("mlops_serving_model_loads_total", label, float(slot.loads)))
            gauges.append(("mlops_serving_model_unloads_total", label, float(slot.unloads)))
            if slot.runtime is None:
                router = slot.shared.router
                gauges.append(("mlops_serving_challenger_share", label, router.challenger_share))
                gauges.append(("mlops_serving_shadow_enabled", label, 1.0 if router.shadow else 0.0))
                continue
            for metric, labels, value in slot.runtime.gauges():
                if metric.startswith(LOG_SERIES):
                    shared_log.append((metric, labels, value))
                elif any(k == "model" for k, _ in labels):
                    gauges.append((metric, labels, value))
                else:
                    gauges.append((metric, label + labels, value))
        unique_log = {(metric, labels): value for metric, labels, value in shared_log}
        gauges.extend((metric, labels, value) for (metric, labels), value in unique_log.items())
        gauges.append(("mlops_serving_resident_bytes", (), resident_mb() * (1 << 20)))
        return merged.render(gauges)
