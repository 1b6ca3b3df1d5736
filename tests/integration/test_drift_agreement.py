"""Our drift verdicts vs Evidently's own ``Report([DataDriftPreset()])`` on planted drift.

Each case prints ``agreement: k/n`` (run with ``-s`` to see it) and asserts it is n/n.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.core.drift import ReferenceProfile, check_drift

pytestmark = pytest.mark.integration
pytest.importorskip("evidently")

PLANTED_DRIFT = {"num_shift", "num_rescale", "cat_new", "cat_shift", "bin_shift", "int_few_shift"}


def planted(n: int, seed: int, *, drift: bool) -> pd.DataFrame:
    """Shifted, rescaled, new-category, re-weighted and unchanged columns; numeric and categorical."""
    rng = np.random.default_rng(seed)
    cats = np.array(["a", "b", "c", "d"], dtype=object)
    df = pd.DataFrame(
        {
            "num_same": rng.normal(0.0, 1.0, n),
            "num_nan_same": rng.gamma(2.0, 1.0, n),
            "num_shift": rng.normal(0.6 if drift else 0.0, 1.0, n),
            "num_rescale": rng.normal(0.0, 2.0 if drift else 1.0, n),
            "int_many_same": rng.integers(0, 60, n),
            "int_few_same": rng.integers(0, 4, n),
            "int_few_shift": rng.choice(4, n, p=[0.1, 0.2, 0.3, 0.4] if drift else [0.4, 0.3, 0.2, 0.1]),
            "float_few_same": rng.integers(0, 3, n).astype(float),
            "cat_same": cats[rng.choice(3, n, p=[0.5, 0.3, 0.2])],
            "cat_new": cats[rng.choice(4, n, p=[0.3, 0.3, 0.2, 0.2] if drift else [0.4, 0.3, 0.3, 0.0])],
            "cat_shift": cats[rng.choice(3, n, p=[0.2, 0.3, 0.5] if drift else [0.5, 0.3, 0.2])],
            "bin_same": rng.random(n) < 0.5,
            "bin_shift": np.where(rng.random(n) < (0.75 if drift else 0.3), "yes", "no").astype(object),
            "cat_dtype_same": pd.Categorical(cats[rng.choice(3, n)]),
        }
    )
    df.loc[rng.choice(n, n // 10, replace=False), "num_nan_same"] = np.nan
    return df


def evidently_verdicts(reference: pd.DataFrame, current: pd.DataFrame, **preset: Any) -> tuple[dict[str, Any], float]:
    """Per column (method display name, score, threshold, drifted) and the drifted share, from the snapshot."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report([DataDriftPreset(**preset)], include_tests=True).run(current, reference)
    data = snapshot.dict()
    columns: dict[str, Any] = {}
    share = float("nan")
    for metric in data["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            columns[config["column"]] = {
                "method": config["method"],
                "score": metric["value"],
                "threshold": config["threshold"],
            }
        elif config["type"].endswith(":DriftedColumnsCount"):
            share = metric["value"]["share"]
    for test in data["tests"]:  # Evidently's own verdict: the column's ValueDrift test fails on drift
        if test["id"] == "drift":
            columns[test["metric_config"]["params"]["column"]]["drifted"] = test["status"] == "FAIL"
    return columns, share


def compare(reference: pd.DataFrame, current: Any, profile: ReferenceProfile, label: str, **kwargs: Any) -> None:
    overrides = kwargs.pop("overrides", None)
    drift_share = kwargs.get("drift_share", 0.5)
    expected, share = evidently_verdicts(
        reference, pd.concat(current) if isinstance(current, list) else current, **kwargs
    )
    result = check_drift(profile, current, overrides=overrides, drift_share=drift_share)
    assert set(result.columns) == set(expected), result.skipped
    agree = 0
    for name, ours in result.columns.items():
        theirs = expected[name]
        # Evidently names a default method by its display name and an explicit one by its registry name.
        method_agrees = theirs["method"] in (ours.method_name, ours.method)
        same = method_agrees and (ours.threshold, ours.drifted) == (theirs["threshold"], theirs["drifted"])
        agree += same
        assert same, (name, ours, theirs)
        tolerance = ours.error_bound or 0.0
        assert ours.score == pytest.approx(theirs["score"], rel=1e-9, abs=max(tolerance, 1e-12)), name
    assert result.share == pytest.approx(share)
    planted_hits = {c for c in PLANTED_DRIFT if c in expected and expected[c]["drifted"]}
    print(f"{label}: agreement {agree}/{len(expected)}, planted drift found by both {sorted(planted_hits)}")


@pytest.mark.parametrize("n", [300, 50_000])
def test_planted_drift_agrees_with_evidently(n: int) -> None:
    reference, current = planted(n, 1, drift=False), planted(n, 2, drift=True)
    compare(reference, current, ReferenceProfile.from_frame(reference), f"planted n={n}")
    expected, _ = evidently_verdicts(reference, current)
    assert {c for c in PLANTED_DRIFT if expected[c]["drifted"]} == PLANTED_DRIFT  # the planting worked


def test_no_drift_agrees_with_evidently() -> None:
    reference, current = planted(20_000, 3, drift=False), planted(20_000, 4, drift=False)
    compare(reference, current, ReferenceProfile.from_frame(reference), "unchanged n=20000")


def test_sketched_reference_and_chunked_current_agree() -> None:
    reference, current = planted(200_000, 5, drift=False), planted(60_000, 6, drift=True)
    profile = ReferenceProfile.from_frame(reference, exact_limit=20_000)
    assert profile.columns["num_shift"].numeric.representation == "sketch"  # type: ignore[union-attr]
    chunks = [current.iloc[i : i + 7_000] for i in range(0, len(current), 7_000)]
    compare(reference, chunks, profile, "sketch 200k/60k chunked")


def test_overrides_agree_with_evidently() -> None:
    reference, current = planted(5_000, 7, drift=False), planted(4_000, 8, drift=True)
    methods = {
        "num_same": "psi",  # Sturges bins over reference + current
        "num_shift": "jensenshannon",
        "num_rescale": "ks",
        "int_many_same": "kl_div",
        "cat_shift": "chisquare",
        "cat_new": "psi",
        "bin_shift": "z",
    }
    thresholds = {"num_same": 0.01, "num_rescale": 0.01, "cat_same": 0.01}
    overrides = {c: (methods.get(c), thresholds.get(c)) for c in {*methods, *thresholds}}
    compare(
        reference,
        current,
        ReferenceProfile.from_frame(reference),
        "overrides",
        per_column_method=methods,
        per_column_threshold=thresholds,
        overrides=overrides,
    )


def test_kind_from_the_current_window_agrees() -> None:
    rng = np.random.default_rng(9)
    reference = pd.DataFrame({"n": rng.integers(0, 50, 3_000), "m": rng.integers(0, 8, 3_000)})
    current = pd.DataFrame({"n": rng.integers(0, 8, 2_000), "m": rng.integers(0, 30, 2_000)})
    compare(reference, current, ReferenceProfile.from_frame(reference), "kind flips")


def test_spec_overrides_and_share_agree_with_evidently() -> None:
    """``monitoring.drift`` from a spec: our verdicts equal Evidently's DataDriftPreset with the same parameters.

    The share is set so that it decides the dataset verdict (Evidently's 0.5 would say no drift
    here), and the report our monitor stores (:func:`drift_report`, methods pinned from the fast
    check) gives Evidently's verdicts too.
    """
    from airflow_mlops.core.drift.report import drift_report, report_summary
    from airflow_mlops.spec import PipelineSpec
    from tests.support.specs import spec_dict

    reference, current = planted(5_000, 11, drift=False), planted(4_000, 12, drift=True)
    columns = {
        "num_shift": {"method": "ks", "threshold": 0.001},
        "num_same": {"method": "psi", "threshold": 0.2},
        "cat_shift": {"threshold": 0.3},  # Jensen-Shannon by default; 0.3 is more than the planted shift
        "int_few_shift": {"method": "chisquare"},
        "bin_shift": {"method": "kl_div"},
        "num_rescale": {"method": "wasserstein", "threshold": 0.5},
    }
    spec = PipelineSpec.from_dict(
        spec_dict(features=list(reference.columns), monitoring={"drift": {"share": 0.25, "columns": columns}})
    )
    rules = spec.monitoring.drift
    methods = {c: m for c, (m, _) in rules.overrides().items() if m}
    thresholds = {c: t for c, (_, t) in rules.overrides().items() if t is not None}
    compare(
        reference,
        current,
        ReferenceProfile.from_frame(reference),
        "spec overrides, share 0.25",
        overrides=rules.overrides(),
        drift_share=rules.share,
        per_column_method=methods,
        per_column_threshold=thresholds,
    )
    ours = check_drift(ReferenceProfile.from_frame(reference), current, overrides=rules.overrides(), drift_share=0.25)
    expected, share = evidently_verdicts(
        reference, current, drift_share=0.25, per_column_method=methods, per_column_threshold=thresholds
    )
    assert 0.25 <= ours.share < 0.5  # the spec's share, not Evidently's default, decides
    assert ours.dataset_drift
    assert "cat_shift" not in ours.drifted_columns  # its raised threshold holds
    stored = report_summary(drift_report(reference, current, ours))
    assert stored["share"] == pytest.approx(share)
    assert sorted(stored["drifted_columns"]) == sorted(c for c, v in expected.items() if v["drifted"])
    assert sorted(stored["drifted_columns"]) == sorted(ours.drifted_columns)
