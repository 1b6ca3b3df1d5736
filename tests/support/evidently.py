"""A real Evidently snapshot for hook tests (local and remote workspaces)."""

from __future__ import annotations

from typing import Any


def drift_snapshot() -> Any:
    """A ``DataDriftPreset`` report run on two small frames, one shifted."""
    import numpy as np
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 300), "c": rng.choice(["a", "b"], 300)})
    current = pd.DataFrame({"x": rng.normal(1, 1, 200), "c": rng.choice(["a", "b"], 200)})
    return Report([DataDriftPreset()]).run(current, reference)
