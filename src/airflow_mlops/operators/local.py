"""Level 0: the notebook as a task. Load, fit, save a model file, print metrics; no tracking."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import DatasetValidationError, QueryRejectedError, SourceMismatchError, TrainingError
from airflow_mlops.hooks.source import open_source
from airflow_mlops.operators.base import MlopsOperator, fail_at_once

if TYPE_CHECKING:
    from airflow.sdk import Context


class TrainLocalModelOperator(MlopsOperator):
    """Load the source, fit the estimator, pickle it to object storage and log the metrics.

    This is the Level 0 baseline: nothing is versioned, tracked or registered. It exists so a team
    can run its notebook on Airflow today and compare with the levels above. The data meets the
    checks the validate task of the levels above runs (a missing column, a null label, a numeric
    column made text), and fails at once, naming what is wrong, before anything is fitted.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        import joblib
        import pandas as pd

        from airflow_mlops.core.metrics import compute_metrics, positive_class_note
        from airflow_mlops.core.training import fit_model, split_frame
        from airflow_mlops.core.validation import require_valid

        with fail_at_once(QueryRejectedError, SourceMismatchError), open_source(self.spec.source) as reader:
            frame = pd.concat(list(reader.chunks(None)), ignore_index=True)
        with fail_at_once(DatasetValidationError, TrainingError):  # the same data and spec fail the same way
            report = require_valid(frame, self.spec, where=f"{self.spec.name} source")
            self.log.info("Dataset passed %d checks on %d rows", len(report.checks), report.rows)
            for remark in report.notes:
                self.log.warning("%s", remark)
            split = split_frame(frame, self.spec)
            model = fit_model(self.spec, split)
        if note := positive_class_note(getattr(model, "classes_", None)):
            self.log.info("%s", note)
        scores = compute_metrics(model, split.x_test, split.y_test, [self.spec.metric.name])
        metrics = {k: v for k, v in scores.items() if math.isfinite(v)}  # NaN (undefined) cannot travel in XCom
        target = self.storage_root() / "level0" / f"model-{context['ti'].run_id}.joblib".replace(":", "_")
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as handle:  # type: ignore[no-untyped-call]
            joblib.dump(model, handle)
        shown = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items()) or "none defined"
        self.log.info("Saved %s; held-out metrics on %d rows: %s", target, len(split.y_test), shown)
        return {"model_path": str(target), "metrics": metrics, "rows": len(frame)}
