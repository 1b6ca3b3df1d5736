"""The traffic split kept in the registry, so a restarted or added replica serves the split last set.

``POST /admin/traffic`` writes the challenger share and shadow mode as the registered model's tag
``mlops.serving.traffic`` (JSON). Every replica reads the model's tags with its aliases at each
poll and applies the tag when its value changes, and at startup: a replica that restarts mid-A/B
test takes up the test's share again instead of its ``--challenger-share``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow_mlops.serving.config import check_share

log = logging.getLogger(__name__)

TRAFFIC_TAG = "mlops.serving.traffic"


def encode(challenger_share: float, shadow: bool) -> str:
    """The tag's value for this split."""
    return json.dumps({"challenger_share": challenger_share, "shadow": shadow}, sort_keys=True)


def decode(text: str) -> tuple[float, bool] | None:
    """``(challenger_share, shadow)`` from a tag value; ``None`` (with a warning) for a value not ours."""
    try:
        value: Any = json.loads(text)
        share, shadow = check_share(value["challenger_share"]), value["shadow"]
        if not isinstance(shadow, bool):
            raise TypeError(f"shadow: expected true or false, found {shadow!r}")
        return share, shadow
    except (ValueError, TypeError, KeyError) as err:
        log.warning("registry tag %s: %.200r is no traffic split (%s); ignored", TRAFFIC_TAG, text, err)
        return None
