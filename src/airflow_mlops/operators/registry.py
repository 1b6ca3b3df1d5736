"""Operators that register model versions and move registry aliases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.assets import model_asset
from airflow_mlops.core import tags
from airflow_mlops.exceptions import TrainingRunNotFoundError
from airflow_mlops.links.mlflow import MlflowModelVersionLink
from airflow_mlops.operators.base import MlopsOperator, airflow_identity, check_run_conf, fail_at_once, spec_name
from airflow_mlops.refs import ModelRef

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class RegisterModelOperator(MlopsOperator):
    """Register a trained model as a new version and point an alias (``challenger``) at it.

    The version carries the dataset digest and source and the Airflow run as tags. Registration
    is keyed on the MLflow run: clearing and re-running this task finds the version it created and
    does not create a second one.

    :param model: the :class:`ModelRef` to register. (templated)
    :param alias: alias to set on the new version; ``None`` sets none.
    """

    template_fields: Sequence[str] = ("model",)
    operator_extra_links = (MlflowModelVersionLink(),)

    def __init__(self, *, model: Any, alias: str | None = tags.CHALLENGER, **kwargs: Any) -> None:
        kwargs.setdefault("outlets", [model_asset(spec_name(kwargs["spec"]))])
        super().__init__(**kwargs)
        self.model = model
        self.alias = alias
        self.mlflow_model_version_url = ""

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.core.registry import register_version

        check_run_conf(context)
        ref = ModelRef.from_xcom(self.model)
        if not ref.run_id:
            raise ValueError("model.run_id: expected the MLflow run id of a trained model, found nothing")
        with self.hook.activate() as client:
            if not ref.model_uri:
                with fail_at_once(TrainingRunNotFoundError):  # a release of a run id that names no model
                    ref = _complete_from_run(client, ref, self.spec.name)
            run_tags = {
                **airflow_identity(context),
                tags.PIPELINE: self.spec.name,
                tags.DATASET_DIGEST: ref.dataset_digest or "",
                tags.DATASET_SOURCE: self.spec.source.describe()[:4000],
                **{f"{tags.METRIC_PREFIX}{k}": f"{v:.6g}" for k, v in ref.metrics.items()},
            }
            version, created = register_version(
                client, name=ref.name, model_uri=ref.model_uri, run_id=ref.run_id, tags=run_tags, alias=self.alias
            )
        self.mlflow_model_version_url = self.hook.model_version_url(ref.name, str(version.version))
        self.log.info(
            "%s %s version %s (alias %s)", "Registered" if created else "Found", ref.name, version.version, self.alias
        )
        for outlet in self.outlets:
            context["outlet_events"][outlet].extra = {"name": ref.name, "version": str(version.version)}
        return ModelRef.from_xcom({**ref.as_xcom(), "version": str(version.version)}).as_xcom()


def _complete_from_run(client: Any, ref: ModelRef, pipeline: str) -> ModelRef:
    """Fill model URI, dataset digest and metrics of a ref that names only a run of ``pipeline`` (Level 1 release).

    A run of another pipeline is refused: its model was trained on another source, which the new
    version's tags (this pipeline's) would misstate.
    """
    from mlflow.exceptions import MlflowException

    from airflow_mlops.exceptions import ModelRegistryError

    try:
        run = client.get_run(ref.run_id)
    except MlflowException as err:
        missing = err.error_code == "RESOURCE_DOES_NOT_EXIST"  # else MLflow may be away: a retry can help
        error = TrainingRunNotFoundError if missing else ModelRegistryError
        raise error(f"run_id: no MLflow run {ref.run_id!r}: {err.message}") from err
    uri = run.data.tags.get(tags.MODEL_URI)
    if not uri:
        raise TrainingRunNotFoundError(f"run_id: run {ref.run_id!r} has no model logged by TrainModelOperator")
    trained_by = run.data.tags.get(tags.PIPELINE)
    if trained_by != pipeline:
        raise TrainingRunNotFoundError(
            f"run_id: run {ref.run_id!r} was trained by pipeline {trained_by!r}, not {pipeline!r}: "
            f"release a run of {pipeline}_train (its MLflow run id); nothing was registered"
        )
    return ModelRef.from_xcom(
        {
            **ref.as_xcom(),
            "model_uri": uri,
            "dataset_digest": run.data.tags.get(tags.DATASET_DIGEST),
            "experiment_id": run.info.experiment_id,
            "metrics": {**run.data.metrics, **ref.metrics},
        }
    )
