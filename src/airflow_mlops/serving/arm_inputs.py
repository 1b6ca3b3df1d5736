"""What a request must carry when more than one arm may score it, and the row each arm gets.

The rule: a request is valid when every *active* arm can score it. The champion is always active;
the challenger while it gets a share of the traffic or scores in shadow. So a request must carry
the required columns of every active arm, each value in the type that arm declares for it; a
column that no loaded arm accepts is rejected (a loaded challenger's columns are accepted before
it gets traffic, so clients can start sending them first); and each arm receives a row of only
its own columns, in its own order and types. The rule does not depend on where the sticky split sends a key, so a
body valid for one user is valid for every user, and a shadow score never fails on input the
champion accepted. Errors name the field and, when the arms' signatures differ, the arm and
version that needs it. A request forced onto one arm (``X-Mlops-Arm``) is checked against that arm
alone (see :mod:`airflow_mlops.serving.routes.predict`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.serving.fast_decode import SingleDecoder
from airflow_mlops.serving.routing import CHALLENGER, CHAMPION
from airflow_mlops.serving.schema import FieldError

if TYPE_CHECKING:
    from airflow_mlops.serving.models import LoadedModel, ModelSet


@dataclass(frozen=True)
class ArmInputs:
    """The active arms of a model set, the columns any loaded arm accepts, and the validation."""

    arms: tuple[tuple[str, LoadedModel], ...]
    accepted: frozenset[str]
    shared: bool  # every active arm has the same signature: one validation serves all
    fast: SingleDecoder | None = None  # decodes and validates a valid /predict body in C when shared

    @classmethod
    def of(cls, models: ModelSet, challenger_active: bool) -> ArmInputs:
        arms: list[tuple[str, LoadedModel]] = [(CHAMPION, models.champion)]
        accepted = set(models.champion.schema.names)
        if models.challenger is not None:
            accepted.update(models.challenger.schema.names)
            if challenger_active:
                arms.append((CHALLENGER, models.challenger))
        shared = len(accepted) == len(models.champion.schema.names) and all(
            model.schema == models.champion.schema for _, model in arms
        )
        return cls(tuple(arms), frozenset(accepted), shared, SingleDecoder(models.champion.schema) if shared else None)

    def validate(
        self, features: Any, loc: tuple[str | int, ...], errors: list[FieldError]
    ) -> dict[str, list[Any]] | None:
        """Each active arm's row, or None after appending every problem (with its arms) to ``errors``."""
        if self.shared:
            row = self.arms[0][1].schema.validate(features, loc, errors)
            return None if row is None else {label: row for label, _ in self.arms}
        rows: dict[str, list[Any]] = {}
        found: dict[tuple[Any, ...], list[str]] = {}
        for label, model in self.arms:
            arm_errors: list[FieldError] = []
            row = model.schema.validate(features, loc, arm_errors, self.accepted)
            if row is not None:
                rows[label] = row
            for err in arm_errors:
                found.setdefault((err.loc, err.kind, err.msg), []).append(f"{label} v{model.version}")
        if not found:
            return rows
        for (where, kind, msg), whose in found.items():
            arms = ", ".join(whose)
            text = f"column in no arm's signature ({arms})" if kind == "extra" else f"{msg} (for {arms})"
            errors.append(FieldError(where, kind, text, arms))
        return None
