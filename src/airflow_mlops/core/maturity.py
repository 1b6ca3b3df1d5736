"""The maturity scorecard: which MLOps practices a pipeline shows evidence of, and the level it earned.

Pure logic. The evidence collector (:mod:`airflow_mlops.assessment`) turns what actually happened
(MLflow runs, registry versions and aliases, ledger rows, monitor runs, Airflow DAG runs and Asset
events) into :class:`Observations`; :func:`score` checks every practice of Levels 1 to 4 against it.
The configured ``level:`` of the spec is never consulted: a pipeline configured for Level 4 that
never retrained on drift has achieved Level 3 at most.

The achieved level is the highest level whose practices, and those of every level below, all
have evidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_mlops.core import tags as tag_names
from airflow_mlops.core.run_trigger import from_tag

if TYPE_CHECKING:
    from collections.abc import Callable

LEVEL_NAMES = {0: "No MLOps", 1: "DevOps", 2: "Automated training", 3: "Automated deployment", 4: "Full automation"}
AUTOMATIC_RUN_TYPES = ("scheduled", "asset_triggered")
MONITOR_ASSET_SUFFIXES = ("/drift", "/degradation")


@dataclass(frozen=True)
class TrainingRun:
    """One MLflow training run as the scorecard sees it."""

    run_id: str
    experiment_id: str
    tags: dict[str, str]
    params: int
    metrics: int
    dataset_inputs: int
    link: str = ""

    @property
    def trigger(self) -> dict[str, Any]:
        """The decoded ``mlops.trigger`` tag (run type and triggering Asset events)."""
        return from_tag(self.tags.get(tag_names.TRIGGER))


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version: its run, tags, aliases and whether its package has a signature."""

    version: str
    run_id: str
    aliases: list[str]
    has_signature: bool | None = None
    link: str = ""


@dataclass(frozen=True)
class LedgerEntry:
    """A ledger row reduced to what the scorecard needs."""

    id: int
    alias: str
    action: str
    from_version: str | None
    to_version: str | None
    reasons: int
    dag_id: str | None
    run_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class MonitorRun:
    """An MLflow run tagged ``mlops.monitor`` (``drift`` or ``quality``)."""

    run_id: str
    monitor: str
    decision: str
    started_at: datetime
    link: str = ""
    champion_version: str | None = None  # the version the verdict is about


@dataclass(frozen=True)
class DagRun:
    """An Airflow DAG run of the pipeline, with the state of its smoke test task when it has one."""

    dag_id: str
    run_id: str
    run_type: str
    state: str
    smoke_test: str | None = None


@dataclass
class Observations:
    """Everything collected about one pipeline; every list may be empty.

    :param name: the pipeline (DAG ids are ``<name>_<role>``).
    :param window_hours: the monitoring window (``monitoring.window_hours`` of the spec).
    :param trace: ``None`` when no prediction was traced, else which steps of the chain were found.
    :param newest_prediction: when the newest logged prediction was made, if any.
    :param spec_level: the spec's ``level:``, when known; the DAGs a missing practice names exist from its level.
    :param unreadable: the systems whose evidence could not be read (``problems`` says why).
    """

    name: str
    window_hours: float = 24.0
    spec_level: int | None = None
    training_runs: list[TrainingRun] = field(default_factory=list)
    versions: list[ModelVersion] = field(default_factory=list)
    model_tags: dict[str, str] = field(default_factory=dict)  # the registered model's
    ledger: list[LedgerEntry] = field(default_factory=list)
    monitor_runs: list[MonitorRun] = field(default_factory=list)
    dag_runs: list[DagRun] = field(default_factory=list)
    trace: dict[str, bool] | None = None
    trace_request: str | None = None
    newest_prediction: datetime | None = None
    problems: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PracticeResult:
    """One practice: met or not, with its evidence (an id or link) or what is missing."""

    level: int
    key: str
    title: str
    met: bool
    evidence: str
    link: str = ""


@dataclass(frozen=True)
class Scorecard:
    """The practices of Levels 1-4 and the achieved level."""

    pipeline: str
    achieved: int
    practices: list[PracticeResult]
    problems: list[str]

    @property
    def partial(self) -> bool:
        """Whether some evidence could not be read: the achieved level is then a lower bound."""
        return bool(self.problems)

    @property
    def headline(self) -> str:
        """``<pipeline>: Level N achieved (<name>)``, or ``at least Level N`` when some evidence could not be read."""
        if self.partial:
            unread = "some evidence could not be read"
            return f"{self.pipeline}: at least Level {self.achieved} ({self.achieved_name}); {unread}"
        return f"{self.pipeline}: Level {self.achieved} achieved ({self.achieved_name})"

    @property
    def achieved_name(self) -> str:
        """The achieved level's name in the maturity model."""
        return LEVEL_NAMES[self.achieved]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "pipeline": self.pipeline,
            "achieved_level": self.achieved,
            "achieved_name": self.achieved_name,
            "practices": [asdict(p) for p in self.practices],
            "problems": list(self.problems),
        }


def _count(n: int, noun: str) -> str:
    """``1 param``, ``3 params``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


Found = tuple[str, str] | None  # (evidence, link) when the practice is met


def _runs_tagged(obs: Observations, tag: str) -> list[TrainingRun]:
    return [r for r in obs.training_runs if r.tags.get(tag)]


def data_digest(obs: Observations) -> Found:
    runs = _runs_tagged(obs, tag_names.DATASET_DIGEST)
    if not runs:
        return None
    return f"run {runs[0].run_id[:12]}: data digest {runs[0].tags['mlops.dataset_digest'][:16]}", runs[0].link


def packaged_model(obs: Observations) -> Found:
    signed = [v for v in obs.versions if v.has_signature]
    if signed:
        return f"version {signed[0].version} is an MLflow model with a signature", signed[0].link
    runs = _runs_tagged(obs, tag_names.MODEL_URI)
    if runs and not obs.versions:
        return f"run {runs[0].run_id[:12]} logged {runs[0].tags['mlops.model_uri']}", runs[0].link
    return None


def smoke_test(obs: Observations) -> Found:
    passed = [r for r in obs.dag_runs if r.smoke_test == "success"]
    return (f"{passed[0].dag_id} {passed[0].run_id}: smoke_test success", "") if passed else None


def tracked_runs(obs: Observations) -> Found:
    full = [r for r in obs.training_runs if r.params and r.metrics and r.dataset_inputs]
    if not full:
        return None
    run = full[0]
    text = (
        f"run {run.run_id[:12]}: {_count(run.params, 'param')}, {_count(run.metrics, 'metric')}, "
        f"{_count(run.dataset_inputs, 'dataset input')}"
    )
    return text, run.link


def registry_aliases(obs: Observations) -> Found:
    aliased = [v for v in obs.versions if v.aliases]
    if not aliased:
        return None
    text = ", ".join(f"{a}=v{v.version}" for v in aliased for a in v.aliases)
    return f"{len(obs.versions)} registered version(s); aliases {text}", aliased[0].link


def automatic_training(obs: Observations) -> Found:
    train = f"{obs.name}_train"
    done = [  # a run whose guard skipped training succeeds too: the smoke test shows a model was made
        r
        for r in obs.dag_runs
        if r.dag_id == train and r.run_type in AUTOMATIC_RUN_TYPES and r.state == r.smoke_test == "success"
    ]
    if done:
        return f"{train} {done[0].run_id} ({done[0].run_type}) trained a model that passed its smoke test", ""
    tagged = [r for r in obs.training_runs if r.trigger.get("run_type") in AUTOMATIC_RUN_TYPES]
    if tagged:
        return f"run {tagged[0].run_id[:12]} started by {tagged[0].trigger['run_type']}", tagged[0].link
    return None


def gate_decisions(obs: Observations) -> Found:
    train = f"{obs.name}_train"
    gated = [e for e in obs.ledger if e.dag_id == train and e.action in ("promote", "reject") and e.reasons]
    if not gated:
        return None
    row = gated[-1]
    # a train DAG promotes only a first model (cold start); a gate it passes leads to an A/B test
    how = "as the first model (cold start)" if row.action == "promote" and row.from_version is None else "by the gate"
    return f"ledger row {row.id}: {row.action} v{row.to_version} {how} in {train}", ""


def ab_decision(obs: Observations) -> Found:
    ab = f"{obs.name}_ab_test"
    taken = [e for e in obs.ledger if e.dag_id == ab and e.action in ("promote", "rollback")]
    if not taken:
        return None
    return f"ledger row {taken[-1].id}: {taken[-1].action} v{taken[-1].to_version} after the live A/B test", ""


def complete_trace(obs: Observations) -> Found:
    if not obs.trace or not all(obs.trace.values()):
        return None
    return f"request {obs.trace_request}: prediction -> version -> run -> DAG run -> data digest -> ledger", ""


def monitored(obs: Observations) -> Found:
    kinds = {m.monitor for m in obs.monitor_runs}
    if not {"drift", "quality"} <= kinds:
        return None
    newest = max(m.started_at for m in obs.monitor_runs)
    if obs.newest_prediction and newest < obs.newest_prediction - timedelta(hours=obs.window_hours):
        return None
    latest = max(obs.monitor_runs, key=lambda m: m.started_at)
    return (
        f"{len(obs.monitor_runs)} drift and quality check(s) in MLflow; the newest, {newest:%Y-%m-%d %H:%M},"
        f" a {latest.monitor} check: {latest.decision}",
        latest.link,
    )


def monitor_retrain(obs: Observations) -> Found:
    for run in obs.training_runs:
        events = [
            e for e in run.trigger.get("asset_events", []) if str(e.get("asset", "")).endswith(MONITOR_ASSET_SUFFIXES)
        ]
        if events:
            return f"run {run.run_id[:12]} retrained on {events[0]['asset']}", run.link
    return None


def rollback_path(obs: Observations) -> Found:
    rolled = [e for e in obs.ledger if e.action == "rollback"]
    if rolled:
        return f"ledger row {rolled[-1].id}: rollback to v{rolled[-1].to_version}", ""
    quality = [m for m in obs.monitor_runs if m.monitor == "quality"]
    armed = [e for e in obs.ledger if e.alias == "champion" and e.action == "promote" and e.from_version]
    if quality and armed:
        row = armed[-1]
        return (
            f"ledger row {row.id} keeps v{row.from_version} to roll back to; quality monitor watches v{row.to_version}",
            "",
        )
    return None


@dataclass(frozen=True)
class Practice:
    """A practice of the maturity model, how to check it, and what to say when evidence is missing."""

    level: int
    key: str
    title: str
    check: Callable[[Observations], Found]
    missing: str


PRACTICES = [
    Practice(
        1,
        "data_digest",
        "versioned data digest",
        data_digest,
        "no training run carries mlops.dataset_digest: run `{name}_train`",
    ),
    Practice(
        1,
        "packaged_model",
        "packaged model with a signature",
        packaged_model,
        "no registered version with a model signature",
    ),
    Practice(
        1,
        "smoke_test",
        "smoke test of the packaged model",
        smoke_test,
        "no `{name}_train` run with a successful smoke_test",
    ),
    Practice(
        2,
        "tracking",
        "tracked params, metrics and dataset inputs",
        tracked_runs,
        "no MLflow run with params, metrics and a dataset input",
    ),
    Practice(2, "registry", "model registry with aliases", registry_aliases, "no registered version holds an alias"),
    Practice(
        2,
        "automatic_training",
        "scheduled or data-triggered training that ran",
        automatic_training,
        "no scheduled or asset-triggered `{name}_train` run succeeded",
    ),
    Practice(3, "gate", "gate decisions recorded", gate_decisions, "no ledger row from the gate in `{name}_train`"),
    Practice(
        3,
        "ab_decision",
        "an A/B decision taken",
        ab_decision,
        "no promote or rollback by `{name}_ab_test` in the ledger",
    ),
    Practice(
        3,
        "trace",
        "a complete trace from a prediction to its data",
        complete_trace,
        "no logged prediction traced to its data and ledger row",
    ),
    Practice(
        4,
        "monitoring",
        "monitor runs within the window",
        monitored,
        "no drift and quality monitor runs covering the latest traffic: trigger `{name}_monitor`",
    ),
    Practice(
        4,
        "monitor_retrain",
        "a retrain triggered by drift or degradation",
        monitor_retrain,
        "no training run started by x-mlops://{name}/drift or /degradation",
    ),
    Practice(
        4,
        "rollback",
        "a rollback path",
        rollback_path,
        "no rollback and no promotion with a predecessor under a quality monitor",
    ),
]


def score(obs: Observations) -> Scorecard:
    """Check every practice; the achieved level is the last level before the first practice without evidence."""
    results = []
    for p in PRACTICES:
        found = p.check(obs)
        if found is None:
            missing = p.missing.format(name=obs.name)
            if obs.spec_level is not None and p.level > obs.spec_level:  # its DAGs do not exist: nothing to run
                missing = f"not built at Level {obs.spec_level}: `level: {p.level}` in the spec adds it"
            results.append(PracticeResult(p.level, p.key, p.title, False, missing))
        else:
            results.append(PracticeResult(p.level, p.key, p.title, True, found[0], found[1]))
    achieved = 0
    for level in sorted({r.level for r in results}):
        if not all(r.met for r in results if r.level == level):
            break
        achieved = level
    return Scorecard(obs.name, achieved, results, list(obs.problems))
