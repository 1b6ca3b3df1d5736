"""A promotion decision with its reasons and evidence: what the offline gate and the A/B analysis return."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from collections.abc import Mapping

Decision = Literal["promote", "reject", "keep_testing", "rollback"]
DECISIONS: tuple[str, ...] = get_args(Decision)


def json_number(value: float) -> float | None:
    """``value`` as a JSON-safe float for evidence: NaN and the infinities become ``None``."""
    return float(value) if math.isfinite(value) else None


@dataclass
class Verdict:
    """The outcome of a promotion decision.

    :param decision: ``promote``, ``reject``, ``keep_testing`` or ``rollback``.
    :param reasons: one full sentence per check that decided, naming the metric, numbers and bound.
    :param evidence: JSON-serialisable numbers behind the decision (estimates, intervals, sizes, seed).
    """

    decision: Decision
    reasons: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        """True when the challenger should become the champion."""
        return self.decision == "promote"

    def as_dict(self) -> dict[str, Any]:
        """A plain dict, suitable for XCom and JSON."""
        return {"decision": self.decision, "reasons": list(self.reasons), "evidence": dict(self.evidence)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Rebuild a verdict from :meth:`as_dict` output; an unknown decision is an error."""
        decision = data.get("decision")
        if decision not in DECISIONS:
            raise ValueError(f"decision: expected one of {list(DECISIONS)}, found {decision!r}")
        reasons = data.get("reasons", [])
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
            raise ValueError(f"reasons: expected a list of strings, found {reasons!r}")
        evidence = data.get("evidence", {})
        if not isinstance(evidence, dict):
            raise ValueError(f"evidence: expected a mapping, found {type(evidence).__name__}")
        return cls(decision=decision, reasons=list(reasons), evidence=dict(evidence))
