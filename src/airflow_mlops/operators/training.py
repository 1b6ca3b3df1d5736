"""Operators that train, evaluate and smoke-test a model, tracked in MLflow."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.core import tags
from airflow_mlops.exceptions import TrainingError
from airflow_mlops.hooks.verdict_metrics import push_training_totals
from airflow_mlops.links.mlflow import MlflowRunLink
from airflow_mlops.operators.base import MlopsOperator, airflow_identity, fail_at_once, form_overrides, run_trigger
from airflow_mlops.refs import DatasetRef, ModelRef

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class TrainModelOperator(MlopsOperator):
    """Fit the spec's estimator on a snapshot and log everything to one MLflow run.

    The run holds the estimator parameters, training metrics, the dataset as an MLflow input
    (snapshot URI and digest), the model with its signature and an input example, and the Airflow
    identity (dag_id, run_id, task_id, try_number) as tags, and the drift reference for monitoring
    (a profile of the training features and of the model's held-out outputs, plus a bounded row
    sample for Evidently reports). A retry reuses the finished run an earlier try of the same task
    instance logged on the same snapshot digest instead of logging a second model, and marks runs an
    earlier try left open as ``FAILED``.

    :param dataset: the :class:`DatasetRef` to train on. (templated)
    :param hyperparameters: overrides of ``spec.estimator.params``, e.g. from DAG Params. (templated)
    """

    template_fields: Sequence[str] = ("dataset", "hyperparameters")
    template_fields_renderers = {"hyperparameters": "json"}
    operator_extra_links = (MlflowRunLink(),)

    def __init__(
        self,
        *,
        dataset: Any,
        hyperparameters: dict[str, Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.hyperparameters = hyperparameters
        self.mlflow_run_url = ""

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.core.drift.prediction import model_outputs, output_source
        from airflow_mlops.core.metrics import compute_metrics, positive_class_note
        from airflow_mlops.core.run_trigger import as_tag, monitor_events
        from airflow_mlops.core.snapshot import read_snapshot
        from airflow_mlops.core.tracking import log_training_run, reusable_run
        from airflow_mlops.core.training import estimator_params, fit_model, split_frame

        ref = DatasetRef.from_xcom(self.dataset)
        overrides = form_overrides(self.hyperparameters)
        trigger = run_trigger(context)
        run_tags = {
            **self.spec.tags,
            **airflow_identity(context),
            tags.PIPELINE: self.spec.name,
            tags.LEVEL: str(self.spec.level),
            tags.DATASET_DIGEST: ref.digest,
            tags.DATASET_URI: ref.uri,
            tags.DATASET_SOURCE: ref.source[:4000],
            tags.DATASET_AS_OF: ref.as_of or "",
            tags.TRIGGER: as_tag(trigger),
        }
        if monitor_events(trigger):
            run_tags[tags.MONITOR_TRIGGERED] = "true"
        frame = read_snapshot(ObjectStoragePath(ref.uri))
        with fail_at_once(TrainingError):  # the same snapshot and parameters fail the same way
            split = split_frame(frame, self.spec)
            model = fit_model(self.spec, split, overrides)
        if note := positive_class_note(getattr(model, "classes_", None)):
            self.log.info("%s", note)
        train_metrics = {
            f"train_{k}": v
            for k, v in compute_metrics(model, split.x_train, split.y_train, [self.spec.metric.name]).items()
            if math.isfinite(v)  # undefined (NaN) is left out: it cannot travel in XCom
        }
        identity = airflow_identity(context)
        with self.hook.activate():
            import mlflow

            experiment = mlflow.set_experiment(self.spec.experiment_name)
            task = {k: v for k, v in identity.items() if k != tags.AIRFLOW_TRY_NUMBER}
            existing = reusable_run(experiment.experiment_id, {**task, tags.DATASET_DIGEST: ref.digest})
            if existing:
                self.log.info("Run %s of an earlier try already logged the model; reusing it", existing)
                run = mlflow.get_run(existing)
                logged_uri = run.data.tags[tags.MODEL_URI]
                run_id, experiment_id = existing, experiment.experiment_id
            else:
                logged = log_training_run(
                    experiment=self.spec.experiment_name,
                    run_name=f"{context['ti'].dag_id}.{context['ti'].task_id}.{context['ti'].run_id}",
                    tags=run_tags,
                    params=estimator_params(self.spec, model),
                    model=model,
                    x_train=split.x_train,
                    dataset=ref,
                    metrics=train_metrics,
                    predictions=model_outputs(model, split.x_test, output_source(model, self.spec.task)),
                    sample_rows=self.spec.monitoring.drift.report_rows,
                )
                run_id, experiment_id, logged_uri = logged.run_id, logged.experiment_id, logged.model_uri
            push_training_totals(mlflow.MlflowClient(), experiment_id, self.spec.name, self.spec.registered_model_name)
        self.mlflow_run_url = self.hook.run_url(experiment_id, run_id)
        self.log.info(
            "Trained %s on %d rows (%s); MLflow run %s", self.spec.name, len(split.x_train),
            ", ".join(f"{name} {value:.4g}" for name, value in sorted(train_metrics.items())) or "no metric", run_id,
        )  # fmt: skip
        return ModelRef(
            name=self.spec.registered_model_name,
            run_id=run_id,
            model_uri=logged_uri,
            metrics=train_metrics,
            dataset_digest=ref.digest,
            experiment_id=experiment_id,
        ).as_xcom()


class EvaluateModelOperator(MlopsOperator):
    """Score a trained model on the held-out split of its snapshot; log the metrics to its run.

    The held-out rows are drawn with the same split as in training (seeded random, or the newest
    rows with ``split.strategy: time``), so they were never seen by the model. Metrics are logged
    as ``test_<metric>`` for every metric of the task kind.

    :param model: the :class:`ModelRef` from training. (templated)
    :param dataset: the :class:`DatasetRef` the model was trained on. (templated)
    """

    template_fields: Sequence[str] = ("model", "dataset")
    operator_extra_links = (MlflowRunLink(),)

    def __init__(self, *, model: Any, dataset: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.dataset = dataset
        self.mlflow_run_url = ""

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.core.metric_catalog import metrics_for
        from airflow_mlops.core.metrics import compute_metrics
        from airflow_mlops.core.snapshot import read_snapshot
        from airflow_mlops.core.tracking import load_model
        from airflow_mlops.core.training import describe_split, split_frame

        model_ref = ModelRef.from_xcom(self.model)
        ref = DatasetRef.from_xcom(self.dataset)
        split = split_frame(read_snapshot(ObjectStoragePath(ref.uri)), self.spec)
        held_out = describe_split(self.spec)
        with self.hook.activate() as client:
            model = load_model(model_ref.model_uri)
            names = [m for m in metrics_for(self.spec.task) if _applicable(m, model)]
            scores = compute_metrics(model, split.x_test, split.y_test, names)
            undefined = sorted(k for k, v in scores.items() if not math.isfinite(v))
            if undefined:  # e.g. ROC AUC on a held-out part of one class; NaN cannot travel in XCom either
                self.log.warning(
                    "Held-out %s undefined on these %d rows (%s): not logged", undefined, len(split.x_test),
                    _held_out_classes(split.y_test, self.spec),
                )  # fmt: skip
            metrics = {f"test_{k}": v for k, v in scores.items() if k not in undefined}
            for key, value in metrics.items():
                client.log_metric(model_ref.run_id, key, value)
            client.set_tag(model_ref.run_id, tags.TEST_ROWS, str(len(split.x_test)))
            client.set_tag(model_ref.run_id, tags.TEST_SPLIT, held_out)
        self.mlflow_run_url = self.hook.run_url(model_ref.experiment_id or "0", model_ref.run_id)
        primary = f"test_{self.spec.metric.name}"
        if primary in metrics:
            self.log.info("Held-out %s = %.4f on %d rows (%s)", primary, metrics[primary], len(split.x_test), held_out)
        return ModelRef.from_xcom({**model_ref.as_xcom(), "metrics": {**model_ref.metrics, **metrics}}).as_xcom()


def _held_out_classes(target: Any, spec: Any) -> str:
    """What the held-out labels hold, to say why a metric is undefined on them."""
    if spec.task != "classification":
        return f"{target.nunique()} distinct value(s)"
    counts = {(k.item() if hasattr(k, "item") else k): int(v) for k, v in target.value_counts().items()}
    if len(counts) == 1:
        where = "the newest rows (split.strategy: time)" if spec.split.strategy == "time" else "the held-out rows"
        return f"{where} are all of class {next(iter(counts))!r}"
    return f"classes {counts}"


def _applicable(metric: str, model: Any) -> bool:
    from airflow_mlops.core.metric_catalog import METRICS

    return not METRICS[metric].needs_proba or hasattr(model, "predict_proba")


class SmokeTestModelOperator(MlopsOperator):
    """Load the packaged model as an MLflow pyfunc and predict on rows of its snapshot.

    Proves the artifact, its signature and its environment description work as a package, not only
    the in-memory estimator. Fails if loading fails or predictions are missing or not finite.

    :param model: the :class:`ModelRef` to test. (templated)
    :param dataset: the :class:`DatasetRef` whose rows are used as input. (templated)
    :param rows: how many rows to predict on.
    """

    template_fields: Sequence[str] = ("model", "dataset")

    def __init__(self, *, model: Any, dataset: Any, rows: int = 20, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.dataset = dataset
        self.rows = rows

    def execute(self, context: Context) -> dict[str, Any]:
        import numpy as np

        from airflow_mlops.core.snapshot import read_snapshot
        from airflow_mlops.core.tracking import load_packaged_model
        from airflow_mlops.core.training import prepare_features
        from airflow_mlops.core.validation import feature_columns

        model_ref = ModelRef.from_xcom(self.model)
        frame = read_snapshot(ObjectStoragePath(DatasetRef.from_xcom(self.dataset).uri)).head(self.rows)
        sample = prepare_features(frame[feature_columns(self.spec, list(frame.columns))])
        with self.hook.activate():
            packaged = load_packaged_model(model_ref.model_uri)
            predictions = np.asarray(packaged.predict(sample))
        if len(predictions) != len(sample):  # the same package fails the same way: no retry
            raise AirflowFailException(f"smoke test: {len(sample)} rows in, {len(predictions)} predictions out")
        if predictions.dtype.kind in "fc" and not np.isfinite(predictions).all():
            raise AirflowFailException("smoke test: the packaged model returned non-finite predictions")
        self.log.info("Packaged model %s predicted %d rows", model_ref.model_uri, len(predictions))
        return {"model_uri": model_ref.model_uri, "rows": len(predictions)}
