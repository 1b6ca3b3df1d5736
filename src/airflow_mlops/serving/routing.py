"""Sticky, weighted champion/challenger routing.

A request key (the ``key``/``request_key`` field, the ``X-Request-Key`` header, else the request
id) is hashed with BLAKE2b, salted with the model name, to a point ``u`` in [0, 1). The challenger
gets the request when ``u < challenger_share``. So:

* the same key always lands on the same arm while the share is unchanged;
* over many keys the challenger's fraction converges to the share;
* raising the share only moves keys from champion to challenger (a key on the challenger stays
  there), lowering it only moves them back: users do not flip-flop during a ramp.

In shadow mode the champion answers every request and the challenger scores it as well.
"""

from __future__ import annotations

import hashlib
import math
import time

from airflow_mlops.serving.config import check_share

CHAMPION = "champion"
CHALLENGER = "challenger"
SHADOW = "shadow"
_SCALE = float(1 << 64)


def bucket(key: str, salt: str = "") -> float:
    """The key's point in [0, 1), stable across processes and machines."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8, salt=salt.encode()[:16]).digest()
    return int.from_bytes(digest, "big") / _SCALE


class Router:
    """Holds the split (changed at run time through the admin API) and picks an arm."""

    def __init__(self, model_name: str, challenger_share: float = 0.0, shadow: bool = False) -> None:
        self.salt = model_name[:16]
        self._salt_bytes = self.salt.encode()[:16]
        self.challenger_share = check_share(challenger_share)
        self.shadow = bool(shadow)
        self.set_at = -math.inf  # Unix time the split was set (the command line's: before any other)

    def set(
        self, challenger_share: float | None = None, shadow: bool | None = None, *, set_at: float | None = None
    ) -> None:
        """Change the split; ``set_at`` (default: now) is when it was set, by this replica or another."""
        if challenger_share is not None:
            self.challenger_share = check_share(challenger_share)
        if shadow is not None:
            self.shadow = bool(shadow)
        self.set_at = time.time() if set_at is None else set_at

    def arm(self, key: str, has_challenger: bool) -> str:
        """``champion`` or ``challenger`` for this key (always champion without a challenger or in shadow mode)."""
        share = self.challenger_share
        if not has_challenger or self.shadow or share <= 0.0:
            return CHAMPION
        if share >= 1.0:
            return CHALLENGER
        digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8, salt=self._salt_bytes).digest()
        return CHALLENGER if int.from_bytes(digest, "big") / _SCALE < share else CHAMPION  # bucket(key, salt)
