"""The traffic split kept in the registry, so a restarted or added replica serves the split last set.

``POST /admin/traffic`` writes the challenger share and shadow mode as the registered model's tag
``mlops.serving.traffic`` (JSON). Every replica reads the model's tags with its aliases at each
poll and applies the tag when its value changes, and at startup: a replica that restarts mid-A/B
test takes up the test's share again instead of its ``--challenger-share``.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, NamedTuple

from airflow_mlops.serving.config import check_share

log = logging.getLogger(__name__)

TRAFFIC_TAG = "mlops.serving.traffic"


class Split(NamedTuple):
    """A traffic split and the Unix time it was set."""

    challenger_share: float
    shadow: bool
    set_at: float


def encode(challenger_share: float, shadow: bool, set_at: float) -> str:
    """The tag's value for this split."""
    return json.dumps({"challenger_share": challenger_share, "shadow": shadow, "set_at": set_at}, sort_keys=True)


def decode(text: str | None) -> Split | None:
    """The split of a tag value; ``None`` for no tag, or (with a warning) for a value not ours.

    A value without ``set_at`` (written by hand) counts as set at time 0: older than any split set
    through the server, newer than the command line's.
    """
    if text is None:
        return None
    try:
        value: Any = json.loads(text)
        share, shadow, set_at = check_share(value["challenger_share"]), value["shadow"], value.get("set_at", 0.0)
        if not isinstance(shadow, bool):
            raise TypeError(f"shadow: expected true or false, found {shadow!r}")
        if isinstance(set_at, bool) or not isinstance(set_at, int | float) or not math.isfinite(set_at):
            raise TypeError(f"set_at: expected a Unix time, found {set_at!r}")
        return Split(share, shadow, float(set_at))
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        log.warning("registry tag %s: %.200r is no traffic split (%s); ignored", TRAFFIC_TAG, text, err)
        return None
