"""Replay the predecessor on the champion's labelled requests, so both are judged on the same rows.

A rollback asks "would the previous champion do better *now*?". Its accuracy while it served was
measured on other requests, possibly in an easier world; under concept drift that comparison
favours the past. Scoring the predecessor on the very requests the champion answered, against
the labels they received, compares the two models on the same period and the same concept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(frozen=True)
class ReplayResult:
    """Both models' accuracy on the same labelled requests."""

    rows: int
    champion_accuracy: float
    predecessor_accuracy: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def replay(
    predecessor: Any, requests: Sequence[tuple[dict[str, Any], Any, Any]], features: Sequence[str] | None = None
) -> ReplayResult:
    """Score ``predecessor`` on ``(features, champion's prediction, label)`` rows; both accuracies.

    The predecessor gets the columns it was fitted on (``feature_names_in_``), else ``features``,
    else every logged column. Answers equal their label by Python equality of the JSON values.

    :raises ValueError: no rows, or the requests lack a column the predecessor needs.
    """
    import pandas as pd

    if not requests:
        raise ValueError("no labelled requests to replay")
    frame = pd.DataFrame([r[0] for r in requests])
    fitted = getattr(predecessor, "feature_names_in_", None)
    if fitted is not None:
        features = [str(n) for n in fitted]
    elif features is None:
        features = list(frame.columns)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValueError(f"the logged requests lack feature(s) {missing} the predecessor needs")
    predicted = predecessor.predict(frame[list(features)]).tolist()
    labels = [r[2] for r in requests]
    champion = sum(r[1] == r[2] for r in requests)
    predecessor_right = sum(p == y for p, y in zip(predicted, labels, strict=True))
    n = len(requests)
    return ReplayResult(rows=n, champion_accuracy=champion / n, predecessor_accuracy=predecessor_right / n)
