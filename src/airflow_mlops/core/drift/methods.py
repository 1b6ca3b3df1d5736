"""Evidently 0.7's drift methods, recomputed from summaries instead of raw reference columns.

Everything here mirrors the installed ``evidently`` 0.7.23 (paths under ``evidently/``):

* Column kind: ``core/datasets.py:1429-1458`` ``infer_column_type``: ``float*`` numerical; ``int*``
  categorical when it has at most ``INTEGER_CARDINALITY_LIMIT = 10`` (``:1426``) distinct values,
  else numerical; ``bool``/``category`` categorical; strings (``string``, or ``object`` whose first
  and last non-null values are ``str``) text when distinct > 50% of non-null values, else
  categorical; anything else (``uint*``, ``Int64``, datetimes, lists) is left out of the preset
  (``presets/drift.py:99``). Evidently infers the kind from the *current* data
  (``core/report.py:313``, ``metrics/column_statistics.py:566``); so does :func:`check_drift`.
* Default method: ``legacy/calculations/stattests/registry.py:137-160`` with ``n_ref`` = reference
  rows and ``n_unique`` = distinct values of reference + current, both after dropping NaN and
  +-inf (``legacy/calculations/data_drift.py:140,149``):

  ========  =========================================  ==============================
  n_ref     numerical                                  categorical
  ========  =========================================  ==============================
  <= 1000   ``n_unique <= 5``: chi-square (``z`` if     chi-square (``z`` if
            ``n_unique <= 2``); else ``ks``             ``n_unique <= 2``)
  > 1000    ``n_unique <= 5``: ``jensenshannon``;       ``jensenshannon``
            else ``wasserstein``
  ========  =========================================  ==============================

* Thresholds and verdicts: ``ks`` p <= 0.05 (``stattests/ks_stattest.py:50,57``); ``chisquare``
  p < 0.05 (``chisquare_stattest.py:47``, default 0.05 at ``registry.py:38``); ``z`` p < 0.05
  (``z_stattest.py:92``); ``wasserstein`` W1 / max(std_ref, 0.001) >= 0.1
  (``wasserstein_distance_norm.py:50-52,59``); ``jensenshannon`` distance >= 0.1 on value shares,
  natural log (``jensenshannon.py:58-60,67``); ``psi`` >= 0.1 (``psi.py``); ``kl_div`` >= 0.1
  (``kl_div.py``). Binning (``stattests/utils.py:16-60``): value shares over the union of values,
  except numerical columns with more than 20 distinct reference values, which use Sturges bins over
  reference + current; ``psi``/``kl_div`` replace empty bins (``feel_zeroes``).
* Dataset drift: share of drifted columns >= ``drift_share`` = 0.5
  (``legacy/calculations/data_drift.py:402-405``, ``presets/drift.py:41``).

Other Evidently methods (anderson, cramer_von_mises, tvd, text drift, ...) are not recomputed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]

Kind = Literal["numerical", "categorical", "text", "datetime", "list", "unknown"]
TESTED_KINDS: frozenset[str] = frozenset({"numerical", "categorical"})
INTEGER_CARDINALITY_LIMIT = 10  # evidently/core/datasets.py:1426
SMALL_REFERENCE_ROWS = 1000  # registry.py:143,151
FEW_VALUES = 5  # registry.py:145,154
BINARY_VALUES = 2  # registry.py:146,150
BINNING_MIN_UNIQUE = 20  # stattests/utils.py:31
DEFAULT_DRIFT_SHARE = 0.5  # presets/drift.py:41


@dataclass(frozen=True)
class Method:
    """One drift method: its Evidently name, display name, kinds, default threshold and verdict rule."""

    name: str
    display_name: str
    kinds: frozenset[str]
    default_threshold: float
    p_value: bool  # score is a p-value (drift when small) rather than a distance (drift when large)
    inclusive: bool = False  # p-value tests: drift on ``p <= threshold`` instead of ``p < threshold``

    def drifted(self, score: float, threshold: float) -> bool:
        if self.p_value:
            return score <= threshold if self.inclusive else score < threshold
        return score >= threshold


_NUM, _CAT = frozenset({"numerical"}), frozenset({"categorical"})
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("ks", "K-S p_value", _NUM, 0.05, p_value=True, inclusive=True),
        Method("chisquare", "chi-square p_value", _CAT, 0.05, p_value=True),
        Method("z", "Z-test p_value", _CAT, 0.05, p_value=True),
        Method("wasserstein", "Wasserstein distance (normed)", _NUM, 0.1, p_value=False),
        Method("jensenshannon", "Jensen-Shannon distance", _NUM | _CAT, 0.1, p_value=False),
        Method("psi", "PSI", _NUM | _CAT, 0.1, p_value=False),
        Method("kl_div", "Kullback-Leibler divergence", _NUM | _CAT, 0.1, p_value=False),
    )
}


def get_method(name: str, kind: str) -> Method:
    """The method ``name`` for a column of ``kind``; unknown names and kinds fail like Evidently's registry."""
    method = METHODS.get(name)
    if method is None:
        raise ValueError(f"drift method {name!r} is not supported here; expected one of {sorted(METHODS)}")
    if kind not in method.kinds:
        raise ValueError(
            f"drift method {name!r} does not apply to {kind} columns; it applies to {sorted(method.kinds)}"
        )
    return method


def default_method(kind: str, n_reference: int, n_unique: int) -> Method:
    """Evidently's default for a column (``registry.py:137-160``); defaults skip the kind check."""
    if kind not in TESTED_KINDS:
        raise ValueError(f"no default drift method for {kind} columns")
    if n_reference <= SMALL_REFERENCE_ROWS:
        if kind == "numerical" and n_unique > FEW_VALUES:
            return METHODS["ks"]
        return METHODS["chisquare"] if n_unique > BINARY_VALUES else METHODS["z"]
    if kind == "numerical" and n_unique > FEW_VALUES:
        return METHODS["wasserstein"]
    return METHODS["jensenshannon"]


def infer_kind(dtype_name: str, n_unique: int, n_count: int, *, first_last_str: bool = True) -> Kind:
    """Evidently's column kind from a dtype name and counts (``core/datasets.py:1429-1458``).

    ``n_count`` is the number of non-null values; ``first_last_str`` tells whether the first and
    last non-null values of an ``object`` column are strings.
    """
    if dtype_name.startswith("float"):
        return "numerical"
    if dtype_name.startswith("int"):
        return "categorical" if n_unique <= INTEGER_CARDINALITY_LIMIT else "numerical"
    if dtype_name in ("string", "str") or (dtype_name == "object" and n_count and first_last_str):
        return "text" if n_unique > n_count * 0.5 else "categorical"
    if dtype_name in ("bool", "category"):
        return "categorical"
    if dtype_name.startswith("datetime"):
        return "datetime"
    return "unknown"


def is_numeric_dtype(dtype_name: str) -> bool:
    """Whether Evidently treats the dtype as numbers (``float*``/``int*``, see :func:`infer_kind`)."""
    return dtype_name.startswith(("float", "int"))


# --- statistics on summaries -------------------------------------------------------------------


def ks(reference: FloatArray, current: FloatArray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov: ``(p_value, D)``, exactly ``scipy.stats.ks_2samp`` as Evidently calls it."""
    from scipy.stats import ks_2samp

    result = ks_2samp(reference, current)
    return float(result.pvalue), float(result.statistic)


def wasserstein_norm(
    reference: FloatArray, reference_weights: FloatArray | None, reference_std: float, current: FloatArray
) -> float:
    """W1(reference, current) / max(std_ref, 0.001) on sorted samples (optionally weighted reference).

    ``scipy.stats.wasserstein_distance`` (``_cdf_distance``, p = 1) integrates |F_ref - F_cur| over
    the merged sorted values, finding both CDFs with ``searchsorted``. Here the merge comes from the
    reference's positions among the (already sorted) current values and the CDFs from cumulative
    sums; they differ from scipy's only inside runs of tied values, where the interval length is 0.
    """
    import numpy as np

    n_ref, n_cur = reference.size, current.size
    positions = current.searchsorted(reference, "right") + np.arange(n_ref)
    merged = np.empty(n_ref + n_cur, dtype=np.float64)
    merged[positions] = reference
    is_cur = np.ones(n_ref + n_cur, dtype=bool)
    is_cur[positions] = False
    merged[is_cur] = current
    deltas = np.diff(merged)
    del merged
    cdf_gap = np.zeros(n_ref + n_cur, dtype=np.float64)  # becomes |F_ref - F_cur| (buffers reused in place)
    cdf_gap[positions] = 1.0 if reference_weights is None else reference_weights
    np.cumsum(cdf_gap, out=cdf_gap)
    cdf_gap /= cdf_gap[-1]
    cur_cdf = np.cumsum(is_cur, dtype=np.float64)
    del is_cur
    cur_cdf /= n_cur
    cdf_gap -= cur_cdf
    del cur_cdf
    np.abs(cdf_gap, out=cdf_gap)
    distance = float(np.vecdot(cdf_gap[:-1], deltas))
    return distance / max(reference_std, 0.001)


def chisquare(reference: Mapping[Any, float], current: Mapping[Any, float]) -> tuple[float, float]:
    """Evidently's chi-square: expected = reference counts scaled to the current size; ``(p, chi2)``."""
    import numpy as np
    from scipy.stats import chisquare as scipy_chisquare

    keys = list(set(reference) | set(current))
    k_norm = sum(current.values()) / sum(reference.values())
    f_exp = [reference.get(key, 0) * k_norm for key in keys]
    f_obs = [current.get(key, 0) for key in keys]
    with np.errstate(divide="ignore", invalid="ignore"):  # a new category: expected 0, p = 0
        result = scipy_chisquare(f_obs, f_exp)
    return float(result.pvalue), float(result.statistic)


def z_test(reference: Mapping[Any, float], current: Mapping[Any, float]) -> tuple[float, float]:
    """Evidently's two-proportion Z-test (``z_stattest.py:38-92``): ``(p, z)``."""
    from scipy.stats import norm

    ref_keys = {k for k, v in reference.items() if v}
    cur_keys = {k for k, v in current.items() if v}
    if len(ref_keys) == 1 and ref_keys == cur_keys:
        return 1.0, 0.0
    first = sorted(ref_keys | cur_keys)[0]
    n1, n2 = sum(reference.values()), sum(current.values())
    p1 = (n1 - reference.get(first, 0)) / n1
    p2 = (n2 - current.get(first, 0)) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - norm.cdf(abs(z)))), z


def value_shares(
    reference: Mapping[Any, float], current: Mapping[Any, float], *, fill: bool
) -> tuple[FloatArray, FloatArray]:
    """Shares of each value of reference + current (``stattests/utils.py:38-42``), zeros filled on request."""
    import numpy as np

    keys = list(set(reference) | set(current))
    n_ref, n_cur = sum(reference.values()), sum(current.values())
    ref = np.array([reference.get(k, 0) / n_ref for k in keys], dtype=np.float64)
    cur = np.array([current.get(k, 0) / n_cur for k in keys], dtype=np.float64)
    return fill_zeroes(ref, cur) if fill else (ref, cur)


def sturges_edges(low: float, high: float, size: int, *, integer: bool) -> FloatArray:
    """``np.histogram_bin_edges(data, "sturges")`` from the data's min, max and size alone.

    ``integer`` is whether the combined data has an integer dtype (numpy widens bins to 1 then).
    """
    import numpy as np

    width = (high - low) / (np.log2(size) + 1.0)
    first, last = (low - 0.5, high + 0.5) if low == high else (low, high)
    if width:
        if integer and width < 1:
            width = 1.0
        n_bins = math.ceil((last - first) / width)
    else:
        n_bins = 1
    return np.linspace(first, last, n_bins + 1, endpoint=True)


def fill_zeroes(ref: FloatArray, cur: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Replace empty shares as ``stattests/utils.py:44-58`` does (``feel_zeroes``), in place."""
    import numpy as np

    for shares in (ref, cur):
        smallest = shares[shares != 0].min()
        np.place(shares, shares == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return ref, cur


def binned_score(method: str, ref: FloatArray, cur: FloatArray) -> float:
    """``jensenshannon`` (natural log), ``psi`` or ``kl_div`` on aligned reference/current shares.

    Jensen-Shannon and KL follow ``scipy.spatial.distance.jensenshannon`` and ``scipy.stats.entropy``
    (normalise, then sum ``rel_entr``) in numpy, which spares a monitor the scipy.stats import.
    """
    import numpy as np

    if method == "jensenshannon":
        p, q = ref / ref.sum(), cur / cur.sum()
        m = (p + q) / 2.0
        return float(np.sqrt((_rel_entr(p, m).sum() + _rel_entr(q, m).sum()) / 2.0))
    if method == "psi":
        return float(np.sum((ref - cur) * np.log(ref / cur)))
    if method == "kl_div":
        return float(_rel_entr(ref / ref.sum(), cur / cur.sum()).sum())
    raise ValueError(f"{method!r} is not a binned drift method")


def _rel_entr(x: FloatArray, y: FloatArray) -> FloatArray:
    """``scipy.special.rel_entr``: x log(x / y), 0 where x == 0, inf where x > 0 and y == 0."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        out = x * np.log(x / y)
    out[x == 0] = 0.0
    out[(x > 0) & (y == 0)] = np.inf
    return out


def fill_zeroes_for(method: str) -> bool:
    """Whether Evidently fills empty bins before ``method`` (``psi``/``kl_div`` do, Jensen-Shannon does not)."""
    return method in ("psi", "kl_div")
