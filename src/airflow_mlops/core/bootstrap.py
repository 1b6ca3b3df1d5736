"""The paired bootstrap: how much better is the challenger than the champion on one holdout, and how sure?

"Paired" means each resample draws one set of row indices and scores both models on it, so the
row-to-row difficulty that both models share cancels out and the interval reflects only how the two
models differ. The interval is the two-sided percentile interval at ``confidence``; requiring its
lower bound to clear a bar gives a one-sided error rate of about ``(1 - confidence) / 2``. The
interval covers holdout sampling noise only: two fitted models whose true quality differs, even by
accident of their training draws, are genuinely different models.

Both models' outputs follow the convention of :mod:`airflow_mlops.core.metric_kernels`; numpy is
imported inside functions only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_mlops.core.metric_kernels import direction_sign, evaluators, metric_info, resolve_classes

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from airflow_mlops.core.metric_catalog import Direction
    from airflow_mlops.core.metric_kernels import Floats

_CELLS = 2_000_000  # resample weights held in memory at once (rows x resamples)


class Comparison(NamedTuple):
    """Paired bootstrap comparison of two models on one holdout (improvement > 0: challenger better)."""

    champion: float
    challenger: float
    improvement: float
    low: float
    high: float
    resamples: int  # resamples on which the metric was defined for both models
    rows: int


def resample_weights(rows: int, n_resamples: int, seed: int) -> Iterator[Floats]:
    """Blocks of bootstrap weights: how many times each row is drawn, one line per resample."""
    import numpy as np

    rng = np.random.default_rng(seed)
    block = max(1, min(n_resamples, _CELLS // max(rows, 1)))
    for start in range(0, n_resamples, block):
        b = min(block, n_resamples - start)
        idx = rng.integers(0, rows, size=(b, rows))
        flat = (np.arange(b)[:, None] * rows + idx).ravel()
        yield np.bincount(flat, minlength=b * rows).reshape(b, rows).astype(np.float64)


def compare(
    metric: str,
    y_true: Any,
    champion_output: Any,
    challenger_output: Any,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    direction: Direction | None = None,
    classes: Sequence[Any] | None = None,
) -> Comparison:
    """Paired bootstrap of challenger minus champion, sign-adjusted so positive means better."""
    import numpy as np

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a value in (0, 1), found {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples: expected at least 1, found {n_resamples}")
    sign = direction_sign(direction or metric_info(metric).direction)
    rows = len(np.asarray(y_true).reshape(-1))
    if rows == 0:
        raise ValueError(f"{metric}: the holdout is empty")
    outputs = [champion_output, challenger_output]
    resolved = resolve_classes(metric, y_true, outputs, classes)
    champ, chall = evaluators(metric, y_true, outputs, resolved)
    ones = np.ones((1, rows))
    champion, challenger = float(champ(ones)[0]), float(chall(ones)[0])
    if not (math.isfinite(champion) and math.isfinite(challenger)):
        raise ValueError(f"{metric} is undefined on this holdout (champion {champion}, challenger {challenger})")
    deltas = np.concatenate([sign * (chall(w) - champ(w)) for w in resample_weights(rows, n_resamples, seed)])
    deltas = deltas[np.isfinite(deltas)]
    if deltas.size == 0:
        raise ValueError(f"{metric} is undefined on every bootstrap resample of {rows} rows")
    low, high = np.quantile(deltas, [(1.0 - confidence) / 2.0, (1.0 + confidence) / 2.0])
    improvement = sign * (challenger - champion)
    return Comparison(champion, challenger, improvement, float(low), float(high), int(deltas.size), rows)


def paired_bootstrap(
    metric: str,
    y_true: Any,
    champion_output: Any,
    challenger_output: Any,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    direction: Direction | None = None,
    classes: Sequence[Any] | None = None,
) -> tuple[float, float, float]:
    """``(improvement, low, high)``: challenger minus champion (positive = challenger better).

    Each resample draws one set of row indices and scores both models on it; ``low``/``high`` bound
    the two-sided percentile interval at ``confidence``. See the module docs for what the outputs hold.
    """
    result = compare(
        metric,
        y_true,
        champion_output,
        challenger_output,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        direction=direction,
        classes=classes,
    )
    return result.improvement, result.low, result.high
