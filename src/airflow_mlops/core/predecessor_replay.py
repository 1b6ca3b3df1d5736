"""Replay the predecessor on the champion's labelled requests, so both are judged on the same rows.

A rollback asks "would the previous champion do better *now*?". Its accuracy while it served was
measured on other requests, possibly in an easier world; under concept drift that comparison
favours the past. Scoring the predecessor on the very requests the champion answered, against
the labels they received, compares the two models on the same period and the same concept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.quality import label_keys

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
    else every logged column. An answer is right when it equals its label as JSON values (``1`` and
    ``1.0`` match, ``true`` and ``1`` do not), as in the SQL count and the Evidently report.

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
    n = len(requests)
    # one key space for labels and both models' answers: JSON equality, as the SQL count and Evidently
    keys = label_keys([*(r[2] for r in requests), *(r[1] for r in requests), *predicted])
    labels, champion, past = keys[:n], keys[n : 2 * n], keys[2 * n :]
    champion_right = sum(a == y for a, y in zip(champion, labels, strict=True))
    predecessor_right = sum(a == y for a, y in zip(past, labels, strict=True))
    return ReplayResult(rows=n, champion_accuracy=champion_right / n, predecessor_accuracy=predecessor_right / n)
