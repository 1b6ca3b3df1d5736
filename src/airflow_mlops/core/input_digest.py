"""The digest of a scoring input: order-independent, any changed value changes it, cheap on wide numeric chunks.

A row's hash is a keyed linear combination of its numeric cells' 64-bit patterns (odd keys, so a
change of any one value changes it), mixed with pandas' hash of its other cells, then scrambled
(splitmix64). The digest sums two differently keyed scrambles of the row hashes over all rows, and
adds the row count and the column types, so the same rows in any order and in any chunking give
the same digest. It costs a few passes over the float matrix, where hashing each cell costs many.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_MASK = 2**64 - 1
_KEYS = (0x9E3779B97F4A7C15, 0xD1B54A32D192ED03)


def _scramble(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise on uint64."""
    import numpy as np

    x: np.ndarray = values ^ (values >> np.uint64(30))
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """One uint64 per row, from every column of ``frame`` (position in the row counts, row order does not)."""
    import numpy as np
    import pandas as pd

    numeric = [
        name
        for name, dtype in frame.dtypes.items()
        if dtype.kind in "fiub" and not isinstance(dtype, pd.CategoricalDtype)
    ]
    others = [name for name in frame.columns if name not in numeric]
    hashes = np.zeros(len(frame), dtype=np.uint64)
    if numeric:
        block = frame if len(numeric) == frame.shape[1] else frame[numeric]
        bits = block.to_numpy(dtype=np.float64, na_value=np.nan).view(np.uint64)
        weights = _scramble(np.arange(1, len(numeric) + 1, dtype=np.uint64) * np.uint64(_KEYS[0])) | np.uint64(1)
        hashes += bits @ weights
    if others:
        hashes ^= _scramble(pd.util.hash_pandas_object(frame[others], index=False).to_numpy())
    return _scramble(hashes)


@dataclass
class InputDigest:
    """Accumulates :func:`row_hashes` of chunks into one hex digest."""

    rows: int = 0
    sums: list[int] = field(default_factory=lambda: [0, 0])
    schema: dict[str, str] = field(default_factory=dict)

    def update(self, frame: pd.DataFrame) -> None:
        import numpy as np

        if not self.schema:
            self.schema = {str(k): str(v) for k, v in frame.dtypes.items()}
        hashes = row_hashes(frame)
        self.rows += len(frame)
        for i, key in enumerate(_KEYS):
            part = hashes if i == 0 else _scramble(hashes ^ np.uint64(key))
            self.sums[i] = (self.sums[i] + int(part.sum(dtype=np.uint64))) & _MASK

    def hexdigest(self) -> str:
        payload = json.dumps({"schema": self.schema, "rows": self.rows, "sums": self.sums}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()
