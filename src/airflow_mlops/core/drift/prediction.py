"""The model output whose distribution prediction drift compares, as the prediction log records it.

A binary classifier with probabilities is compared on its positive-class probability (the log's
``score``), a regressor on its predicted value (also ``score``), any other classifier on its
predicted labels (the log's ``prediction``, as category text: ``1``, ``1.0`` and ``"1"`` are one
category, since a distribution of labels does not care how JSON typed them). The same
function serves the training side (the held-out split) and the monitoring side (the log).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

PREDICTION_COLUMN = "__prediction__"
Source = Literal["score", "prediction"]


def output_source(model: Any, task: str) -> Source:
    """``score`` for regressors and binary classifiers with probabilities, else ``prediction``."""
    if task == "regression":
        return "score"
    classes = getattr(model, "classes_", None)
    return "score" if hasattr(model, "predict_proba") and classes is not None and len(classes) == 2 else "prediction"


def model_outputs(model: Any, x: pd.DataFrame, source: Source) -> pd.Series:
    """The model's outputs on ``x`` as the server logs them, named :data:`PREDICTION_COLUMN`."""
    import numpy as np
    import pandas as pd

    if source == "score" and hasattr(model, "predict_proba"):
        values: Any = np.asarray(model.predict_proba(x))[:, 1].astype(np.float64)
    elif source == "score":
        values = np.asarray(model.predict(x), dtype=np.float64)
    else:
        values = [label_text(v) for v in np.asarray(model.predict(x)).tolist()]
    return pd.Series(values, name=PREDICTION_COLUMN, dtype=np.float64 if source == "score" else object)


def logged_outputs(rows: list[tuple[Any, Any]], source: Source) -> pd.Series:
    """Outputs from logged ``(prediction, score)`` pairs; a missing score becomes NaN (dropped by the checks)."""
    import numpy as np
    import pandas as pd

    if source == "score":
        scores = [float(s) if isinstance(s, int | float) else np.nan for _, s in rows]
        return pd.Series(scores, name=PREDICTION_COLUMN, dtype=np.float64)
    return pd.Series([label_text(p) for p, _ in rows], name=PREDICTION_COLUMN, dtype=object)


def label_text(value: Any) -> Any:
    """A label as text, integral floats written as integers (``1.0`` -> ``"1"``); ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)
