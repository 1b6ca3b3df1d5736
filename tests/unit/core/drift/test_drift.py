from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from airflow_mlops.core.drift import ReferenceProfile, check_drift
from airflow_mlops.core.drift.methods import (
    METHODS,
    binned_score,
    chisquare,
    default_method,
    get_method,
    infer_kind,
    ks,
    sturges_edges,
    value_shares,
    wasserstein_norm,
    z_test,
)


def frame(n: int, seed: int, *, drift: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "x": rng.normal(0.6 if drift else 0.0, 1.0, n),
            "scale": rng.normal(0.0, 2.0 if drift else 1.0, n),
            "count": rng.integers(0, 40, n),
            "few": rng.integers(0, 4, n).astype(float),
            "color": rng.choice(["red", "green", "blue", "pink"] if drift else ["red", "green", "blue"], n),
            "flag": rng.random(n) < (0.7 if drift else 0.5),
        }
    )
    df["color"] = df["color"].astype(object)
    df.loc[rng.choice(n, n // 20, replace=False), "x"] = np.nan
    return df


# --- the methods against scipy ------------------------------------------------------------------


def test_ks_is_scipy_ks_2samp() -> None:
    rng = np.random.default_rng(0)
    a, b = np.sort(rng.normal(size=300)), np.sort(rng.normal(0.3, size=500))
    p, d = ks(a, b)
    expected = stats.ks_2samp(a, b)
    assert (p, d) == (expected.pvalue, expected.statistic)


def test_wasserstein_matches_scipy_plain_and_weighted() -> None:
    rng = np.random.default_rng(1)
    a, b = np.sort(rng.normal(size=2000)), np.sort(rng.normal(0.2, 1.3, size=3000))
    std = float(np.std(a))
    assert wasserstein_norm(a, None, std, b) == pytest.approx(stats.wasserstein_distance(a, b) / std, rel=1e-12)
    values, counts = np.unique(rng.integers(0, 30, 5000).astype(float), return_counts=True)
    expanded = np.repeat(values, counts)
    got = wasserstein_norm(values, counts.astype(float), 2.0, b)
    assert got == pytest.approx(stats.wasserstein_distance(expanded, b) / 2.0, rel=1e-12)
    assert wasserstein_norm(a, None, 0.0, b) == pytest.approx(stats.wasserstein_distance(a, b) / 0.001)


def test_chisquare_and_z_known_values() -> None:
    ref, cur = {"a": 50, "b": 30, "c": 20}, {"a": 40, "b": 40, "c": 20}
    p, chi2 = chisquare(ref, cur)
    expected = stats.chisquare([40, 40, 20], [50, 30, 20])
    assert p == pytest.approx(expected.pvalue)
    assert chi2 == pytest.approx(expected.statistic)
    p_new, _ = chisquare(ref, {**cur, "d": 5})
    assert p_new == 0.0  # a category the reference never saw
    p, z = z_test({"x": 50, "y": 50}, {"x": 30, "y": 70})
    p1, p2, pooled = 0.5, 0.7, 0.6
    expected_z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 100))
    assert z == pytest.approx(expected_z)
    assert p == pytest.approx(2 * (1 - stats.norm.cdf(abs(expected_z))))
    assert z_test({"x": 10}, {"x": 7})[0] == 1.0


def test_binned_scores_match_scipy() -> None:
    ref, cur = value_shares({"a": 60, "b": 40}, {"a": 30, "b": 50, "c": 20}, fill=False)
    assert binned_score("jensenshannon", ref, cur) == pytest.approx(distance.jensenshannon(ref, cur))
    ref, cur = value_shares({"a": 60, "b": 40}, {"a": 30, "b": 50, "c": 20}, fill=True)
    assert ref.min() == 0.0001  # Evidently's feel_zeroes
    assert binned_score("kl_div", ref, cur) == pytest.approx(stats.entropy(ref, cur))
    assert binned_score("psi", ref, cur) == pytest.approx(float(np.sum((ref - cur) * np.log(ref / cur))))


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(2).normal(size=1234),
        np.random.default_rng(3).integers(0, 7, 50_000),
        np.random.default_rng(4).integers(-1000, 1000, 300),
        np.full(10, 3.0),
    ],
)
def test_sturges_edges_match_numpy(data: np.ndarray) -> None:
    edges = sturges_edges(data.min(), data.max(), data.size, integer=data.dtype.kind == "i")
    np.testing.assert_array_equal(edges, np.histogram_bin_edges(data, bins="sturges"))


# --- selection rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "n_ref", "n_unique", "expected"),
    [
        ("numerical", 1000, 6, "ks"),
        ("numerical", 1000, 5, "chisquare"),
        ("numerical", 1000, 3, "chisquare"),
        ("numerical", 1000, 2, "z"),
        ("numerical", 1001, 6, "wasserstein"),
        ("numerical", 1001, 5, "jensenshannon"),
        ("numerical", 1001, 2, "jensenshannon"),
        ("categorical", 1000, 50, "chisquare"),
        ("categorical", 1000, 3, "chisquare"),
        ("categorical", 1000, 2, "z"),
        ("categorical", 1000, 1, "z"),
        ("categorical", 1001, 2, "jensenshannon"),
        ("categorical", 10**6, 500, "jensenshannon"),
    ],
)
def test_default_method(kind: str, n_ref: int, n_unique: int, expected: str) -> None:
    assert default_method(kind, n_ref, n_unique).name == expected


def test_selection_and_kinds_mirror_evidentlys_code() -> None:
    pytest.importorskip("evidently")
    from evidently.core.datasets import infer_column_type
    from evidently.legacy.calculations.stattests.registry import _get_default_stattest
    from evidently.legacy.core import ColumnType

    for n_ref in (5, 999, 1000, 1001, 5000):
        for n_unique in (1, 2, 3, 5, 6, 25):
            ref = pd.Series(np.arange(n_ref) % n_unique, dtype=float)
            for kind, ctype in (("numerical", ColumnType.Numerical), ("categorical", ColumnType.Categorical)):
                expected = _get_default_stattest(ref, ref.iloc[:1], ctype).name
                assert default_method(kind, n_ref, ref.nunique()).name == expected, (kind, n_ref, n_unique)
    samples = [
        pd.Series([1.0, 2.0, 2.0]),
        pd.Series(np.arange(11)),
        pd.Series(np.arange(10)),
        pd.Series(["a", "b", "a", "a"], dtype=object),
        pd.Series(["a", "b", "c"], dtype=object),
        pd.Series(["a", "b", "a"], dtype="string"),
        pd.Series([True, False]),
        pd.Series(pd.Categorical(["u", "v"])),
        pd.Series(np.arange(3), dtype="uint8"),
        pd.Series(pd.date_range("2026-01-01", periods=3)),
        pd.Series([1, "a", 2], dtype=object),
    ]
    for s in samples:
        valid = s.dropna()
        first_last = bool(len(valid)) and isinstance(valid.iloc[0], str) and isinstance(valid.iloc[-1], str)
        ours = infer_kind(s.dtype.name, s.nunique(), s.count(), first_last_str=first_last)
        assert ours == infer_column_type(s).name.lower(), s.dtype


def test_overrides_are_checked_like_evidentlys_registry() -> None:
    assert get_method("psi", "numerical").default_threshold == 0.1
    with pytest.raises(ValueError, match="does not apply to numerical"):
        get_method("chisquare", "numerical")
    with pytest.raises(ValueError, match="not supported"):
        get_method("anderson", "numerical")
    assert {m.name for m in METHODS.values() if m.p_value} == {"ks", "chisquare", "z"}
    assert METHODS["ks"].drifted(0.05, 0.05)
    assert not METHODS["chisquare"].drifted(0.05, 0.05)
    assert METHODS["wasserstein"].drifted(0.1, 0.1)


# --- profile ------------------------------------------------------------------------------------


def test_profile_kinds_and_representations() -> None:
    prof = ReferenceProfile.from_frame(frame(3000, 0), exact_limit=1000)
    cols = prof.columns
    assert {n: c.kind for n, c in cols.items()} == {
        "x": "numerical",
        "scale": "numerical",
        "count": "numerical",
        "few": "numerical",
        "color": "categorical",
        "flag": "categorical",
    }
    assert cols["x"].n_missing == 150
    assert cols["x"].numeric is not None
    assert cols["x"].numeric.representation == "sketch"
    assert cols["count"].numeric is not None
    assert cols["count"].numeric.representation == "counts"
    assert cols["flag"].binary
    assert sum(cols["color"].counts.values()) == 3000  # type: ignore[union-attr]
    assert ReferenceProfile.from_frame(frame(2000, 0)).columns["x"].numeric.representation == "exact"  # type: ignore[union-attr]


def test_profile_round_trips(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ref, cur = frame(4000, 0), frame(2000, 1, drift=True)
    prof = ReferenceProfile.from_frame(ref, exact_limit=3000)
    expected = check_drift(prof, cur).as_dict()
    copies = [ReferenceProfile.from_json(prof.to_json())]
    for name in ("profile.json", "profile.npz"):
        prof.save(tmp_path / name)
        copies.append(ReferenceProfile.load(tmp_path / name))
        copies.append(ReferenceProfile.load(str(tmp_path / name)))
    buffer = io.BytesIO()
    prof.save(buffer)
    buffer.seek(0)
    copies.append(ReferenceProfile.load(buffer))
    for copy in copies:
        assert copy.to_json() == prof.to_json()
        assert check_drift(copy, cur).as_dict() == expected
    with pytest.raises(ValueError, match="not a drift profile"):
        ReferenceProfile.from_json('{"format": "other"}')


def test_sketch_error_bounds_the_wasserstein_score() -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"v": rng.lognormal(size=300_000)})
    cur = pd.DataFrame({"v": rng.lognormal(0.05, 1.0, size=50_000)})
    exact = check_drift(ReferenceProfile.from_frame(ref, exact_limit=300_000), cur).columns["v"]
    sketched_profile = ReferenceProfile.from_frame(ref, exact_limit=5_000)
    sketched = check_drift(sketched_profile, cur).columns["v"]
    assert sketched.approximate
    assert not exact.approximate
    assert sketched.error_bound == sketched_profile.columns["v"].numeric.sketch_error  # type: ignore[union-attr]
    assert abs(sketched.score - exact.score) <= sketched.error_bound + 1e-12  # type: ignore[operator]
    assert sketched.error_bound < 0.01  # type: ignore[operator]  # 60 values per block here


# --- the check ----------------------------------------------------------------------------------


def test_chunked_equals_unchunked() -> None:
    ref, cur = frame(5000, 0), frame(7000, 1, drift=True)
    prof = ReferenceProfile.from_frame(ref)
    whole = check_drift(prof, cur).as_dict()
    chunks = (cur.iloc[i : i + 999] for i in range(0, len(cur), 999))
    assert check_drift(prof, chunks).as_dict() == whole
    small = check_drift(ReferenceProfile.from_frame(ref.iloc[:400]), cur.iloc[:300]).as_dict()
    assert (
        check_drift(ReferenceProfile.from_frame(ref.iloc[:400]), [cur.iloc[:100], cur.iloc[100:300]]).as_dict() == small
    )


def test_check_verdicts_and_json() -> None:
    result = check_drift(ReferenceProfile.from_frame(frame(5000, 0)), frame(5000, 1, drift=True))
    assert set(result.drifted_columns) == {"x", "scale", "color", "flag"}
    assert result.columns["x"].method == "wasserstein"
    assert result.columns["few"].method == "jensenshannon"
    assert result.share == pytest.approx(4 / 6)
    assert result.dataset_drift
    json.dumps(result.as_dict(), allow_nan=False)
    same = check_drift(ReferenceProfile.from_frame(frame(300, 0)), frame(300, 1))
    assert same.columns["x"].method == "ks"
    assert same.columns["flag"].method == "z"
    assert not same.dataset_drift


def test_overrides_and_drift_share() -> None:
    prof = ReferenceProfile.from_frame(frame(5000, 0))
    cur = frame(5000, 1, drift=True)
    result = check_drift(
        prof, cur, overrides={"x": ("psi", 0.5), "scale": (None, 10.0), "count": ("ks", None)}, drift_share=0.9
    )
    assert (result.columns["x"].method, result.columns["x"].threshold) == ("psi", 0.5)
    assert (result.columns["scale"].method, result.columns["scale"].threshold) == ("wasserstein", 10.0)
    assert not result.columns["scale"].drifted
    assert result.columns["count"].method == "ks"
    assert not result.dataset_drift
    with pytest.raises(ValueError, match="does not apply"):
        check_drift(prof, cur, overrides={"x": ("chisquare", None)})
    with pytest.raises(ValueError, match="not in the drift profile"):
        check_drift(prof, cur, overrides={"nope": ("ks", None)})
    sketched = ReferenceProfile.from_frame(frame(5000, 0), exact_limit=1000)
    with pytest.raises(ValueError, match="KS needs the exact reference"):
        check_drift(sketched, cur, overrides={"x": ("ks", None)})


def test_kind_follows_the_current_data_like_evidently() -> None:
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"n": rng.integers(0, 50, 3000), "when": pd.date_range("2026-01-01", periods=3000, freq="min")})
    cur = pd.DataFrame({"n": rng.integers(0, 8, 3000), "when": pd.date_range("2026-02-01", periods=3000, freq="min")})
    result = check_drift(ReferenceProfile.from_frame(ref), cur)
    assert result.columns["n"].kind == "categorical"  # int with <= 10 values in the current window
    assert result.columns["n"].method == "jensenshannon"
    assert result.columns["n"].drifted
    assert "when" in result.skipped


def test_bad_input_fails_with_the_column_name() -> None:
    prof = ReferenceProfile.from_frame(frame(500, 0))
    cur = frame(500, 1)
    with pytest.raises(ValueError, match=r"no column\(s\) \['flag'\]"):
        check_drift(prof, [cur.drop(columns="flag")])
    cur["x"] = "text"
    with pytest.raises(ValueError, match="reference dtype is float64"):
        check_drift(prof, cur, columns=["x"])
    with pytest.raises(ValueError, match="empty"):
        check_drift(prof, [])


def test_an_empty_column_is_skipped_with_its_reason_and_the_others_judged() -> None:
    """All NaN in the window (an optional feature nobody sent) fails Evidently's report; here it is named."""
    prof = ReferenceProfile.from_frame(frame(500, 0))
    cur = frame(500, 1)
    cur["x"] = np.nan
    result = check_drift(prof, cur)
    assert result.skipped["x"] == "empty in the window (all null, NaN or inf): nothing to judge"
    assert "x" not in result.columns
    assert len(result.columns) == len(cur.columns) - 1


def test_override_of_the_wrong_kind_names_the_column() -> None:
    """A method that does not apply to the column's kind fails naming the column and the method's kinds."""
    frame = pd.DataFrame({"plan": ["a", "b", "c"] * 50, "x": [float(i) for i in range(150)]})
    profile = ReferenceProfile.from_frame(frame)
    with pytest.raises(ValueError, match=r"column 'plan': drift method 'ks' does not apply to categorical"):
        check_drift(profile, frame, overrides={"plan": ("ks", None)})
