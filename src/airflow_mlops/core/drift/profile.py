"""The reference profile: what Evidently's drift methods need from the training data, in bounded size.

Built once at training time (:meth:`ReferenceProfile.from_frame`) and stored beside the model, so a
drift check never reloads the raw reference. Per column it keeps the dtype, the Evidently kind
(:func:`~airflow_mlops.core.drift.methods.infer_kind`), the row count and distinct count after
dropping NaN and +-inf (as ``legacy/calculations/data_drift.py:140`` does), and:

* non-numeric columns (strings, ``category``, ``bool``): the count of every value (exact);
* numeric columns with at most ``COUNTS_LIMIT`` distinct values: value -> count (exact);
* other numeric columns with at most ``exact_limit`` rows (default 100 000): all values, sorted
  (exact);
* larger numeric columns: a sketch of ``exact_limit`` equal-count blocks of the sorted values, each
  represented by its median and weighted by its size (block sizes follow ``numpy.array_split``).

Numeric columns also keep the exact min, max, mean and population std of the full column (the
Wasserstein norm uses the exact std). The sketch error is measured when the profile is built:
``sketch_error`` = W1(reference, sketch) / max(std, 0.001), the mean distance of each value to its
block's median. By the triangle inequality the normed Wasserstein score computed from the sketch
is within ``sketch_error`` of the exact score, for any current window. Binned methods
(Jensen-Shannon, PSI, KL) place each block in the bin of its median, so a reference share moves by
at most one block (``1 / exact_limit``) per bin edge. KS needs the exact reference (Evidently only
uses it for references of at most 1000 rows, always stored exactly).

Storage: :meth:`~ReferenceProfile.to_json` is self-contained (arrays base64-encoded float64);
:meth:`~ReferenceProfile.save` writes that JSON for ``*.json`` paths and otherwise a ``.npz`` (JSON
metadata plus raw arrays); :meth:`~ReferenceProfile.load` recognises either, from a path or a
binary file object.
"""

from __future__ import annotations

import base64
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from airflow_mlops.core.drift.methods import infer_kind, is_numeric_dtype

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    FloatArray = npt.NDArray[np.float64]

FORMAT = "airflow-mlops.drift-profile"
VERSION = 1
COUNTS_LIMIT = 1024
DEFAULT_EXACT_LIMIT = 100_000
Representation = Literal["counts", "exact", "sketch"]


@dataclass
class NumericSummary:
    """A numeric column's distribution: sorted ``values`` with optional ``weights`` (see module doc)."""

    representation: Representation
    values: FloatArray
    weights: FloatArray | None
    minimum: float
    maximum: float
    mean: float
    std: float
    sketch_error: float = 0.0

    @property
    def exact(self) -> bool:
        return self.representation != "sketch"

    def expanded(self) -> FloatArray:
        """Every reference value, sorted (exact representations only)."""
        import numpy as np

        if not self.exact:
            raise ValueError("the reference of this column is a sketch: the exact values were not kept")
        if self.weights is None:
            return self.values
        return np.repeat(self.values, self.weights.astype(np.int64))

    def value_counts(self) -> dict[Any, float]:
        """Value -> count (for a sketch: block medians -> block sizes, an approximation)."""
        import numpy as np

        if self.weights is not None:
            values, weights = self.values, self.weights
            if self.representation == "sketch":
                values, inverse = np.unique(values, return_inverse=True)
                weights = np.bincount(inverse, weights=weights).astype(np.float64)
            return dict(zip(values.tolist(), weights.tolist(), strict=True))
        values, counts = np.unique(self.values, return_counts=True)
        return dict(zip(values.tolist(), counts.tolist(), strict=True))

    def histogram(self, edges: FloatArray) -> FloatArray:
        import numpy as np

        counts, _ = np.histogram(self.values, edges, weights=self.weights)
        return counts.astype(np.float64)


@dataclass
class ColumnProfile:
    """One reference column: dtype, Evidently kind, sizes and the summary its drift methods need."""

    name: str
    dtype: str
    kind: str
    n: int
    n_missing: int
    n_unique: int
    counts: dict[Any, int] | None = None
    numeric: NumericSummary | None = None

    @property
    def binary(self) -> bool:
        return self.n_unique <= 2

    def value_counts(self) -> dict[Any, float]:
        if self.numeric is not None:
            return self.numeric.value_counts()
        return dict(self.counts or {})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "dtype": self.dtype,
            "kind": self.kind,
            "binary": self.binary,
            "n": self.n,
            "n_missing": self.n_missing,
            "n_unique": self.n_unique,
        }
        if self.counts is not None:
            out["counts"] = {"values": list(self.counts), "counts": list(self.counts.values())}
        if (num := self.numeric) is not None:
            out["numeric"] = {
                "representation": num.representation,
                "min": num.minimum,
                "max": num.maximum,
                "mean": num.mean,
                "std": num.std,
                "sketch_error": num.sketch_error,
                "size": int(num.values.size),
            }
            if num.representation == "counts":
                assert num.weights is not None
                out["numeric"]["values"] = num.values.tolist()
                out["numeric"]["counts"] = [int(w) for w in num.weights.tolist()]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], values: FloatArray | None) -> ColumnProfile:
        import numpy as np

        counts = None
        if (c := data.get("counts")) is not None:
            counts = dict(zip(c["values"], c["counts"], strict=True))
        numeric = None
        if (num := data.get("numeric")) is not None:
            representation = num["representation"]
            weights = None
            if representation == "counts":
                values = np.asarray(num["values"], dtype=np.float64)
                weights = np.asarray(num["counts"], dtype=np.float64)
            elif values is None:
                raise ValueError(f"drift profile column {data['name']!r}: the {representation} values are missing")
            elif representation == "sketch":
                weights = _block_sizes(data["n"], values.size)
            numeric = NumericSummary(
                representation, values, weights, num["min"], num["max"], num["mean"], num["std"], num["sketch_error"]
            )
        return cls(
            data["name"], data["dtype"], data["kind"], data["n"], data["n_missing"], data["n_unique"], counts, numeric
        )


@dataclass
class ReferenceProfile:
    """Per-column reference summaries for :func:`~airflow_mlops.core.drift.check.check_drift`."""

    columns: dict[str, ColumnProfile]
    n_rows: int
    exact_limit: int = DEFAULT_EXACT_LIMIT
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_frame(
        cls, df: pd.DataFrame, columns: Sequence[str] | None = None, *, exact_limit: int = DEFAULT_EXACT_LIMIT
    ) -> ReferenceProfile:
        """Profile ``columns`` (default: all) of the reference frame."""
        if exact_limit < 1:
            raise ValueError(f"exact_limit must be >= 1, found {exact_limit}")
        names = list(df.columns) if columns is None else list(columns)
        missing = [c for c in names if c not in df.columns]
        if missing:
            raise ValueError(f"reference frame has no column(s) {missing}; it has {list(df.columns)}")
        profiles = {}
        for name in names:
            if not isinstance(name, str):
                raise ValueError(f"drift profile column names must be strings, found {name!r}")
            profiles[name] = _profile_column(name, df[name], exact_limit)
        return cls(profiles, len(df), exact_limit)

    # --- serialisation ---------------------------------------------------------------------------

    def _header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "mirrors": "evidently 0.7 DataDriftPreset defaults",
            "n_rows": self.n_rows,
            "exact_limit": self.exact_limit,
            "meta": self.meta,
            "columns": [c.to_dict() for c in self.columns.values()],
        }

    def _arrays(self) -> dict[int, FloatArray]:
        return {
            i: c.numeric.values
            for i, c in enumerate(self.columns.values())
            if c.numeric is not None and c.numeric.representation != "counts"
        }

    def to_json(self) -> str:
        """Self-contained JSON (arrays as base64 little-endian float64)."""
        import numpy as np

        header = self._header()
        for i, values in self._arrays().items():
            raw = np.ascontiguousarray(values, dtype="<f8").tobytes()
            header["columns"][i]["numeric"]["values_b64"] = base64.b64encode(raw).decode("ascii")
        return json.dumps(header)

    @classmethod
    def from_json(cls, text: str | bytes) -> ReferenceProfile:
        import numpy as np

        header = json.loads(text)
        arrays = {}
        for i, col in enumerate(header.get("columns", [])):
            b64 = (col.get("numeric") or {}).pop("values_b64", None)
            if b64 is not None:
                arrays[i] = np.frombuffer(base64.b64decode(b64), dtype="<f8").astype(np.float64)
        return cls._from_header(header, arrays)

    @classmethod
    def _from_header(cls, header: dict[str, Any], arrays: dict[int, FloatArray]) -> ReferenceProfile:
        if header.get("format") != FORMAT:
            raise ValueError(f"not a drift profile: expected format {FORMAT!r}, found {header.get('format')!r}")
        if header.get("version") != VERSION:
            raise ValueError(f"drift profile version {header.get('version')!r} is not supported; expected {VERSION}")
        columns = {c["name"]: ColumnProfile.from_dict(c, arrays.get(i)) for i, c in enumerate(header["columns"])}
        return cls(columns, header["n_rows"], header["exact_limit"], header.get("meta", {}))

    def save(self, target: str | Path | BinaryIO) -> None:
        """Write JSON to ``*.json`` paths, else ``.npz`` (file objects get ``.npz``)."""
        import numpy as np

        if isinstance(target, str | Path) and Path(target).suffix == ".json":
            Path(target).write_text(self.to_json())
            return
        arrays: dict[str, Any] = {f"values_{i}": v for i, v in self._arrays().items()}
        arrays["header"] = np.frombuffer(json.dumps(self._header()).encode(), dtype=np.uint8)
        if isinstance(target, str | Path):
            with Path(target).open("wb") as fh:
                np.savez_compressed(fh, **arrays)
        else:
            np.savez_compressed(target, **arrays)

    @classmethod
    def load(cls, source: str | Path | BinaryIO) -> ReferenceProfile:
        """Read a profile written by :meth:`save` (either format)."""
        import numpy as np

        raw = Path(source).read_bytes() if isinstance(source, str | Path) else source.read()
        if not raw.startswith(b"PK"):
            return cls.from_json(raw)
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            header = json.loads(npz["header"].tobytes())
            arrays = {int(k.split("_", 1)[1]): npz[k].astype(np.float64) for k in npz.files if k != "header"}
        return cls._from_header(header, arrays)


# --- building ----------------------------------------------------------------------------------


def _profile_column(name: str, series: pd.Series, exact_limit: int) -> ColumnProfile:
    dtype = series.dtype.name
    if is_numeric_dtype(dtype):
        return _profile_numeric(name, series, exact_limit)
    counts = series.value_counts(dropna=True)
    counts = counts[counts > 0]  # unused categories of a ``category`` dtype
    n = int(counts.sum())
    first_last_str = _first_last_str(series)
    kind = infer_kind(dtype, len(counts), n, first_last_str=first_last_str)
    profile = ColumnProfile(name, dtype, kind, n, len(series) - n, len(counts))
    if kind == "categorical":
        profile.counts = {_json_scalar(name, k): int(v) for k, v in counts.items()}
    elif len(counts) <= COUNTS_LIMIT and all(_json_safe(k) for k in counts.index):
        # text or unknown here, yet a window of the same values may be categorical (the kind is the window's)
        profile.counts = {_json_scalar(name, k): int(v) for k, v in counts.items()}
    return profile


def _profile_numeric(name: str, series: pd.Series, exact_limit: int) -> ColumnProfile:
    import numpy as np
    import pandas as pd

    arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = arr[np.isfinite(arr)]
    n = int(finite.size)
    if n == 0:
        return ColumnProfile(name, series.dtype.name, infer_kind(series.dtype.name, 0, 0), 0, len(series), 0)
    # Evidently takes ``np.std`` of the cleaned Series, i.e. pandas' population std, in row order.
    std = float(pd.Series(finite, copy=False).std(ddof=0))
    mean = float(finite.mean())
    finite.sort()
    starts = np.flatnonzero(np.concatenate(([True], finite[1:] != finite[:-1])))
    n_unique = int(starts.size)
    kind = infer_kind(series.dtype.name, n_unique, n)
    bounds = (float(finite[0]), float(finite[-1]), mean, std)
    if n_unique <= COUNTS_LIMIT:
        counts = np.diff(np.append(starts, n)).astype(np.float64)
        summary = NumericSummary("counts", finite[starts], counts, *bounds)
    elif n <= exact_limit:
        summary = NumericSummary("exact", finite, None, *bounds)
    else:
        sizes = _block_sizes(n, exact_limit)
        block_starts = np.concatenate(([0], np.cumsum(sizes[:-1]))).astype(np.int64)
        medians = finite[block_starts + sizes.astype(np.int64) // 2]
        error = float(np.abs(finite - np.repeat(medians, sizes.astype(np.int64))).mean()) / max(std, 0.001)
        summary = NumericSummary("sketch", medians, sizes, *bounds, sketch_error=error)
    return ColumnProfile(name, series.dtype.name, kind, n, len(series) - n, n_unique, numeric=summary)


def _block_sizes(n: int, blocks: int) -> FloatArray:
    """Sizes of ``numpy.array_split(range(n), blocks)``: the first ``n % blocks`` get one more."""
    import numpy as np

    sizes = np.full(blocks, n // blocks, dtype=np.float64)
    sizes[: n % blocks] += 1
    return sizes


def _first_last_str(series: pd.Series) -> bool:
    valid = series.dropna()
    return bool(len(valid)) and isinstance(valid.iloc[0], str) and isinstance(valid.iloc[-1], str)


def _json_safe(value: Any) -> bool:
    if hasattr(value, "item"):
        value = value.item()
    return isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value))


def _json_scalar(column: str, value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise ValueError(f"drift profile column {column!r}: category {value!r} ({type(value).__name__}) is not JSON-safe")
