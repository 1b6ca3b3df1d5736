"""Shared plumbing for the provider's operators: spec coercion, hooks, storage, run identity."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator, ObjectStoragePath, conf

from airflow_mlops.core import tags
from airflow_mlops.home import airflow_home
from airflow_mlops.hooks.mlflow import MlflowHook
from airflow_mlops.spec import PipelineSpec

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow.sdk import Context

STORAGE_SECTION = "mlops"


def default_storage_uri() -> str:
    """``[mlops] storage_uri`` from the Airflow config, else a folder under ``AIRFLOW_HOME``."""
    return conf.get(STORAGE_SECTION, "storage_uri", fallback=f"file://{airflow_home() / 'mlops-data'}")


def airflow_identity(context: Context) -> dict[str, str]:
    """The Airflow run identity every MLflow run and model version carries as tags."""
    ti = context["ti"]
    return {
        tags.AIRFLOW_DAG_ID: ti.dag_id,
        tags.AIRFLOW_RUN_ID: ti.run_id,
        tags.AIRFLOW_TASK_ID: ti.task_id,
        tags.AIRFLOW_TRY_NUMBER: str(ti.try_number),
    }


def sentences(reasons: list[str]) -> str:
    """Reasons as one text: each a sentence (a missing full stop added), joined by spaces."""
    return " ".join(r if r.rstrip().endswith((".", "!", "?", ":")) else f"{r.rstrip()}." for r in reasons if r)


@contextmanager
def fail_at_once(*errors: type[Exception]) -> Iterator[None]:
    """Re-raise ``errors`` as ``AirflowFailException``: the same input fails the same way, so no retry."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except errors as err:
        raise AirflowFailException(str(err)) from err


def serving_failure(message: str, err: Exception) -> Exception:
    """The error a failed model-server check raises, with ``message``.

    ``AirflowFailException`` when ``err`` says the server is not the one expected (the connection's
    setting: no retry changes it), else ``DeploymentError``, which is retried.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_mlops.exceptions import DeploymentError, WrongServerError

    return AirflowFailException(message) if isinstance(err, WrongServerError) else DeploymentError(message)


def skip(operator: BaseOperator, reason: str) -> NoReturn:
    """Skip the task with ``reason`` in its log and in its XCom ``skip_reason`` (the MLOps run tab shows it).

    Airflow's own log line reads only "Skipping task." in the UI, and Airflow keeps no reason.
    """
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowSkipException

    operator.log.info("Skipped: %s", reason)
    try:
        ti = get_current_context()["ti"]
    except Exception:  # called outside a running task (a unit test): the log line is the record
        ti = None
    if ti is not None:
        ti.xcom_push(key=tags.SKIP_REASON_XCOM, value=reason)
    raise AirflowSkipException(reason)


def run_trigger(context: Context) -> dict[str, Any]:
    """What started this DAG run (see :func:`airflow_mlops.core.run_trigger.describe_trigger`)."""
    from airflow_mlops.core.run_trigger import describe_trigger

    dag_run = context.get("dag_run")
    return describe_trigger(getattr(dag_run, "run_type", None), context.get("triggering_asset_events"))


def record_failure(context: Context) -> None:
    """``on_failure_callback``: leave the error as XCom ``failure``, for the MLOps run tab (Airflow keeps none).

    A task killed from outside (out of memory, a lost worker) runs no callback and leaves none.
    """
    from airflow.sdk.exceptions import AirflowFailException, AirflowTaskTimeout

    from airflow_mlops.exceptions import MlopsError

    error = context.get("exception")
    if error is None:
        return
    text = str(error).strip()
    if not isinstance(error, AirflowFailException | MlopsError) or not text:  # ours are sentences already
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    if isinstance(error, AirflowTaskTimeout):  # say which setting stopped it
        task = context.get("task")
        limit = getattr(task, "execution_timeout", None)
        text = f"the task ran longer than its execution_timeout ({limit}; the spec's task_timeout_minutes): {text}"
    try:
        context["ti"].xcom_push(key=tags.FAILURE_XCOM, value=text[:2000])
    except Exception as err:  # the run tab then says only that the task failed
        logging.getLogger(__name__).warning("Could not record the failure for the MLOps run tab: %s", err)


def with_record_failure(callbacks: Any) -> Any:
    """``on_failure_callback`` with :func:`record_failure` first: a task's own callbacks run too, not instead."""
    if callbacks is None:
        return record_failure
    others = list(callbacks) if isinstance(callbacks, list | tuple | set | frozenset) else [callbacks]
    return [record_failure, *(c for c in others if c is not record_failure)]


def check_run_conf(context: Context) -> None:
    """Fail at once when the run's conf names a key its DAG has no Param for (a mistyped key was ignored in silence).

    :raises AirflowFailException: naming the unknown keys and the DAG's Params.
    """
    from airflow.sdk.exceptions import AirflowFailException

    conf = getattr(context.get("dag_run"), "conf", None) or {}
    # not context["params"]: Airflow copies every conf key into it (dag_run_conf_overrides_params)
    declared = (getattr(context.get(owner), "params", None) or {} for owner in ("dag", "task"))
    params = {name for group in declared for name in group}
    unknown = sorted(str(key) for key in conf if key not in params)
    if unknown:
        known = ", ".join(sorted(params)) or "none"
        raise AirflowFailException(
            f"the run's conf names {', '.join(unknown)}, which this DAG has no Param for (its Params: {known}); "
            "trigger it again with those names"
        )


def form_overrides(value: Any) -> dict[str, Any]:
    """The trigger form's ``hyperparameters`` as a dict; ``AirflowFailException`` (no retry) when they are not JSON."""
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_mlops.core.overrides import parse_overrides

    try:
        return parse_overrides(value)
    except ValueError as err:
        raise AirflowFailException(f"{err}; fix the form's hyperparameters and trigger again") from None


def check_estimator_builds(context: Context, spec: PipelineSpec) -> None:
    """Fail at once when the estimator ``train`` would fit cannot be built: the train DAG's first task calls it.

    It builds the spec's estimator with the run's ``hyperparameters`` (nothing is fitted), so a
    parameter the class lacks, an estimator that does not fit the task, or a mistyped name in the
    trigger form fails in seconds, not after the extract and the validation. A value scikit-learn
    refuses (``C: "abc"``) still fails when ``train`` fits.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_mlops.exceptions import TrainingError

    overrides = form_overrides((context.get("params") or {}).get("hyperparameters"))
    from airflow_mlops.core.training import configured_estimator

    try:
        configured_estimator(spec, overrides)
    except TrainingError as err:
        raise AirflowFailException(str(err)) from None


def spec_name(spec: PipelineSpec | dict[str, Any]) -> str:
    """The pipeline name of a spec or of its dict form."""
    return spec.name if isinstance(spec, PipelineSpec) else str(spec["name"])


AS_OF_SKEW = timedelta(minutes=5)  # clocks of the trigger and the worker may differ by this much


def resolve_as_of(value: Any, context: Context) -> datetime:
    """``as_of`` from a templated value, else the DAG run's ``run_after`` (stable across retries).

    :raises AirflowFailException: the value is not a date, or it is in the future (a snapshot "as of"
        a time still to come would change as rows land, so its digest would not name its data);
        no retry can fix either.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_mlops.core.snapshot import utc_now
    from airflow_mlops.core.utc import as_utc

    given: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str) and value.strip():
        try:
            given = datetime.fromisoformat(value.strip())
        except ValueError:
            raise AirflowFailException(
                f"as_of: expected an ISO 8601 date or datetime (2026-06-01 or 2026-06-01T12:00:00Z), found {value!r}"
            ) from None
    if given is not None:
        now = utc_now()
        try:
            moment = as_utc(given)
        except OverflowError:
            raise AirflowFailException(f"as_of {value!r}: out of the range of dates") from None
        if moment > now + AS_OF_SKEW:
            raise AirflowFailException(
                f"as_of {given.isoformat()} is in the future (now {now:%Y-%m-%dT%H:%M:%SZ}): a snapshot as of a "
                "time still to come would change as new rows land; leave it empty for the run's time"
            )
        return given
    dag_run = context.get("dag_run")
    run_after = getattr(dag_run, "run_after", None) or context.get("logical_date")
    if run_after is None:
        return utc_now()
    return datetime.fromisoformat(str(run_after)) if not isinstance(run_after, datetime) else run_after


def task_timeout(spec: PipelineSpec) -> timedelta | None:
    """Airflow's ``execution_timeout`` of a pipeline's tasks: ``task_timeout_minutes``, ``None`` for no limit."""
    minutes = spec.task_timeout_minutes
    return None if minutes is None else timedelta(minutes=minutes)


class MlopsOperator(BaseOperator):
    """Base of the pipeline operators: holds the spec and builds the hook and storage root.

    :param spec: the pipeline spec (a :class:`PipelineSpec` or its dict form).
    :param mlflow_conn_id: overrides ``spec.mlflow.conn_id``.
    """

    ui_color = "#d9ecf2"

    def __init__(
        self, *, spec: PipelineSpec | dict[str, Any], mlflow_conn_id: str | None = None, **kwargs: Any
    ) -> None:
        self.spec = spec if isinstance(spec, PipelineSpec) else PipelineSpec.from_dict(spec)
        kwargs.setdefault("retries", self.spec.retries)
        kwargs.setdefault("retry_delay", timedelta(seconds=self.spec.retry_delay_seconds))
        kwargs.setdefault("execution_timeout", task_timeout(self.spec))
        given = (kwargs.get("default_args") or {}).get("on_failure_callback")  # a DAG's or task group's
        kwargs["on_failure_callback"] = with_record_failure(kwargs.get("on_failure_callback", given))
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id or self.spec.mlflow.conn_id

    @cached_property
    def hook(self) -> MlflowHook:
        """The MLflow hook for this task."""
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def storage_root(self) -> ObjectStoragePath:
        """Folder of this pipeline's snapshots and files in object storage."""
        return ObjectStoragePath(self.spec.storage or default_storage_uri()) / self.spec.name
