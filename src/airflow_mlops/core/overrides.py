"""Run-time overrides of estimator parameters (the ``hyperparameters`` Param of the trigger form).

Whoever can trigger a DAG can send them, so they may only set parameters the built estimator
already has (``get_params(deep=True)``, nested ``step__param`` names included) and only to JSON
values: nothing that names a class, a callable or a file to load.
"""

from __future__ import annotations

import math
from typing import Any

_MAX_DEPTH = 20
# Parameters whose value names a place on disk: a Pipeline's ``memory`` is a joblib cache folder
# that fitted transformers are pickled to and loaded back from.
FILE_PARAMS = frozenset({"memory"})


def parse_overrides(value: Any) -> dict[str, Any]:
    """The form's ``hyperparameters`` as a dict: empty for nothing, a JSON object's text decoded; else ValueError."""
    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"hyperparameters: expected a JSON object, found {value!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"hyperparameters: expected a JSON object, found {type(value).__name__}")
    return value


def check_overrides(overrides: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
    """Return ``overrides`` if every key is in ``known`` and every value is JSON; else raise ValueError."""
    unknown = sorted(str(k) for k in overrides if k not in known)
    if unknown:
        hints = [f"{k!r}: did you mean {m!r}?" for k in unknown for m in closest_name(k, [str(n) for n in known])]
        raise ValueError(
            f"hyperparameters: unknown parameter(s) {unknown}{' (' + '; '.join(hints) + ')' if hints else ''}; "
            f"expected names from get_params(): {sorted(known)}"
        )
    for key, value in overrides.items():
        if str(key).rsplit("__", 1)[-1] in FILE_PARAMS:
            raise ValueError(
                f"hyperparameters.{key}: cannot be set from a trigger: it names a folder scikit-learn loads "
                "pickles from (set it in the spec's estimator.params)"
            )
        problem = _json_problem(value, 0)
        if problem:
            raise ValueError(f"hyperparameters.{key}: expected a JSON value, found {problem}")
    return overrides


def closest_name(name: str, known: list[str]) -> list[str]:
    """The known name ``name`` most likely meant: the same but for case, else the closest spelling."""
    same_case = [k for k in known if k.lower() == name.lower()]
    if same_case:
        return same_case[:1]
    import difflib

    return difflib.get_close_matches(name, known, n=1, cutoff=0.8)


def _json_problem(value: Any, depth: int) -> str | None:
    """What in ``value`` is not JSON (``None`` when all of it is)."""
    if depth > _MAX_DEPTH:
        return "a value nested too deeply"
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else repr(value)
    if isinstance(value, list):
        return next((p for p in (_json_problem(v, depth + 1) for v in value) if p), None)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return "a mapping with non-string keys"
        return next((p for p in (_json_problem(v, depth + 1) for v in value.values()) if p), None)
    return f"a {type(value).__name__}"
