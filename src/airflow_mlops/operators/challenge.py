"""ChallengeChampionOperator: the offline promotion gate of Level 3."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import ObjectStoragePath

from airflow_mlops.core import tags
from airflow_mlops.links.mlflow import MlflowRunLink
from airflow_mlops.operators.base import MlopsOperator
from airflow_mlops.refs import DatasetRef, ModelRef

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd
    from airflow.sdk import Context

MIN_FRESH_ROWS = 50
EVIDENCE_DIR = "promotion"


def json_row(frame: pd.DataFrame) -> dict[str, Any]:
    """The first row of ``frame`` as a JSON-safe ``{column: value}`` dict (NaN becomes None)."""
    import json

    return dict(json.loads(frame.head(1).to_json(orient="records"))[0])


class ChallengeChampionOperator(MlopsOperator):
    """Score the challenger and the current champion on the same fresh holdout and apply the policy.

    The holdout is the held-out split of the challenger's snapshot (its newest rows with
    ``split.strategy: time``), restricted to rows newer than the champion's training watermark when
    there are at least 50 of them (so the champion is not judged on rows it trained on); otherwise
    the whole test split, noted in the evidence. Against a champion whose newest live-quality
    verdict says ``degraded`` or ``rollback`` (Level 4, see :mod:`airflow_mlops.core.champion_health`)
    the bar is ``promotion.degraded_champion_bar``. The verdict (decision, reasons, evidence) is
    stored as a JSON artifact on the challenger's MLflow run and as tags on its model version, and
    returned for :class:`PromoteModelOperator`.

    :param model: the registered challenger :class:`ModelRef` (with ``version``). (templated)
    :param dataset: the challenger's training :class:`DatasetRef`. (templated)
    """

    template_fields: Sequence[str] = ("model", "dataset")
    operator_extra_links = (MlflowRunLink(),)

    def __init__(self, *, model: Any, dataset: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.dataset = dataset
        self.mlflow_run_url = ""

    def execute(self, context: Context) -> dict[str, Any]:
        import numpy as np

        from airflow_mlops.core.champion_health import champion_health, promotion_bar
        from airflow_mlops.core.metric_catalog import METRICS
        from airflow_mlops.core.offline_gate import judge_offline
        from airflow_mlops.core.registry import alias_version
        from airflow_mlops.core.snapshot import read_snapshot, utc_now
        from airflow_mlops.core.tracking import load_model
        from airflow_mlops.core.training import split_frame

        challenger = ModelRef.from_xcom(self.model)
        if not challenger.version:
            raise ValueError("model.version: expected a registered challenger version, found none")
        dataset = DatasetRef.from_xcom(self.dataset)
        frame = read_snapshot(ObjectStoragePath(dataset.uri))
        split = split_frame(frame, self.spec)
        policy, metric = self.spec.promotion, self.spec.metric.name
        with self.hook.activate() as client:
            champion_version = alias_version(client, challenger.name, tags.CHAMPION)
            champion_model, health, same_data = None, None, False
            holdout_note = "test split of the challenger's snapshot"
            rows = split.x_test.index
            if champion_version is not None:
                champion_mv = client.get_model_version(challenger.name, champion_version)
                champion_model = load_model(f"models:/{challenger.name}/{champion_version}")
                run_tags = client.get_run(champion_mv.run_id).data.tags if champion_mv.run_id else {}
                same_data = bool(dataset.digest) and run_tags.get(tags.DATASET_DIGEST) == dataset.digest
                rows, holdout_note = self._fresh_rows(frame, split.x_test.index, run_tags.get(tags.DATASET_AS_OF))
                health = champion_health(client, self.spec, str(champion_version), now=utc_now())
            bar = promotion_bar(health, policy)
            challenger_model = load_model(challenger.model_uri)
            x, y = split.x_test.loc[rows], split.y_test.loc[rows]
            needs_proba = METRICS[metric].needs_proba

            def output(model: Any, proba: bool) -> Any:
                return model.predict_proba(x) if proba else model.predict(x)

            guard_outputs = {
                g: (output(champion_model, METRICS[g].needs_proba), output(challenger_model, METRICS[g].needs_proba))
                for g in policy.guards
                if champion_model is not None and METRICS[g].needs_proba != needs_proba
            }
            segments = None
            if policy.segment_column:
                if policy.segment_column not in frame.columns:
                    raise ValueError(
                        f"promotion.segment_column: {policy.segment_column!r} is not a column of the dataset"
                    )
                segments = frame.loc[rows, policy.segment_column].astype(str).to_numpy()
            verdict = judge_offline(
                policy,
                metric=metric,
                direction=self.spec.metric.resolved_direction,
                y_true=y.to_numpy(),
                champion_output=None if champion_model is None else output(champion_model, needs_proba),
                challenger_output=output(challenger_model, needs_proba),
                guard_outputs=guard_outputs or None,
                segments=segments,
                seed=self.spec.split.seed,
                classes=sorted(np.unique(split.y_train).tolist()) if self.spec.task == "classification" else None,
                bar=bar,
                same_data=same_data,
            )
            evidence = {
                **verdict.as_dict(),
                "smoke_features": json_row(x.head(1)),
                "model_name": challenger.name,
                "challenger_version": str(challenger.version),
                "champion_version": champion_version,
                "holdout": {"rows": len(rows), "source": holdout_note},
                "champion_health": None if health is None else health.describe(),
            }
            if champion_model is not None:  # why these numbers differ from the training run's test metrics
                evidence["reasons"] = [*evidence["reasons"], f"Holdout: {len(rows)} rows, the {holdout_note}."]
            artifact = f"{EVIDENCE_DIR}/verdict-{context['ti'].run_id}.json".replace(":", "_")
            client.log_dict(challenger.run_id, evidence, artifact)
            evidence_uri = f"runs:/{challenger.run_id}/{artifact}"
            gate_tags = {tags.GATE_DECISION: verdict.decision, tags.GATE_EVIDENCE: evidence_uri}
            if champion_version is not None:  # the first version has no champion to beat: no tag, not "None"
                gate_tags[tags.GATE_CHAMPION_VERSION] = str(champion_version)
            for key, value in gate_tags.items():
                client.set_model_version_tag(challenger.name, str(challenger.version), key, value)
        self.mlflow_run_url = self.hook.run_url(challenger.experiment_id or "0", challenger.run_id)
        self.log.info(
            "Gate for %s v%s vs champion %s: %s",
            challenger.name,
            challenger.version,
            champion_version,
            verdict.decision,
        )
        for reason in evidence["reasons"]:
            self.log.info("  %s", reason)
        return {**evidence, "evidence_uri": evidence_uri}

    def _fresh_rows(self, frame: pd.DataFrame, test_index: Any, as_of: str | None) -> tuple[Any, str]:
        """Test rows newer than the champion's training watermark ``as_of``, if there are enough of them."""
        import pandas as pd

        column = self.spec.source.timestamp_column
        if not column or not as_of:
            return test_index, "test split of the challenger's snapshot (no champion watermark)"
        stamps = pd.to_datetime(frame.loc[test_index, column], utc=True, errors="coerce")
        fresh = test_index[(stamps > pd.Timestamp(as_of)).to_numpy()]
        if len(fresh) >= MIN_FRESH_ROWS:
            return fresh, f"test rows newer than the champion's data ({as_of})"
        return test_index, f"test split; only {len(fresh)} rows newer than the champion's data ({as_of})"
