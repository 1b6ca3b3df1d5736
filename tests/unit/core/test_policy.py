"""The offline promotion gate: exact metrics, a paired bootstrap, and decisions that name their numbers."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from airflow_mlops.core.bootstrap import paired_bootstrap
from airflow_mlops.core.metric_catalog import METRICS
from airflow_mlops.core.metric_kernels import evaluators, resolve_classes, score
from airflow_mlops.core.metrics import _scorer
from airflow_mlops.core.offline_gate import judge_offline
from airflow_mlops.core.verdict import Verdict
from airflow_mlops.spec import PipelineSpec, PromotionPolicy
from tests.support.specs import spec_dict

ROWS = 2000


def _binary(seed: int = 0, rows: int = ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Labels and a base signal that models can be built from."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    return y, rng.normal(size=rows)


def _proba(y: np.ndarray, strength: float, seed: int) -> np.ndarray:
    """Positive-class probabilities whose separation grows with ``strength``."""
    rng = np.random.default_rng(seed)
    logit = strength * (2 * y - 1) + rng.normal(size=y.size)
    return 1.0 / (1.0 + np.exp(-logit))


def _labels_with_accuracy(y: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    flip = rng.random(y.size) > accuracy
    return np.where(flip, 1 - y, y)


def _fixtures(metric: str) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    y2 = rng.integers(0, 2, 500)
    y3 = rng.integers(0, 3, 500)
    p3 = rng.dirichlet([1.0, 1.0, 1.0], 500)
    p3[np.arange(500), y3] += 0.4
    p3 /= p3.sum(axis=1, keepdims=True)
    info = METRICS[metric]
    if info.task == "regression":
        target = rng.normal(size=500)
        return [(target, target + rng.normal(0, 0.5, 500))]
    if info.needs_proba:
        tied = np.round(_proba(y2, 1.0, 4), 1)  # many ties: exercises the tie handling of ROC AUC
        p2 = np.column_stack([1 - tied, tied])
        return [(y2, p2), (y2, np.column_stack([1 - _proba(y2, 1.0, 5), _proba(y2, 1.0, 5)])), (y3, p3)]
    return [(y2, _labels_with_accuracy(y2, 0.8, 6)), (y3, p3.argmax(axis=1))]


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_metrics_match_sklearn_on_all_rows_and_on_a_resample(metric: str) -> None:
    """Our weighted per-row statistics give scikit-learn's value, also on a bootstrap resample."""
    rng = np.random.default_rng(7)
    for y, output in _fixtures(metric):
        classes = np.unique(y).tolist()
        expected = _scorer(metric, classes)(y, output)
        assert score(metric, y, output) == pytest.approx(expected, abs=1e-12)
        idx = rng.integers(0, y.size, y.size)
        weights = np.bincount(idx, minlength=y.size)[None, :].astype(float)
        (evaluate,) = evaluators(metric, y, [output], resolve_classes(metric, y, [output]))
        assert evaluate(weights)[0] == pytest.approx(_scorer(metric, classes)(y[idx], output[idx]), abs=1e-12)


def test_positive_class_probabilities_equal_two_column_probabilities() -> None:
    y, _ = _binary()
    p = _proba(y, 1.0, 1)
    assert score("roc_auc", y, p) == pytest.approx(skm.roc_auc_score(y, p))
    assert score("log_loss", y, p) == score("log_loss", y, np.column_stack([1 - p, p]))


def test_string_labels_and_explicit_classes() -> None:
    """Labels may be strings; ``classes`` covers a class the holdout lacks."""
    y = np.array(["no", "yes", "yes", "no", "yes"])
    pred = np.array(["no", "yes", "no", "no", "yes"])
    assert score("accuracy", y, pred) == pytest.approx(0.8)
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    assert score("log_loss", y, proba, classes=["maybe", "no", "yes"]) == pytest.approx(
        skm.log_loss(y, proba, labels=["maybe", "no", "yes"])
    )
    with pytest.raises(ValueError, match=r"expected probabilities of shape \(rows, 2\)"):
        score("log_loss", y, proba)
    with pytest.raises(ValueError, match="label 'later' is not one of the classes"):
        score("accuracy", y, np.array(["no", "yes", "later", "no", "yes"]), classes=["no", "yes"])


def test_output_length_must_match() -> None:
    y, _ = _binary()
    with pytest.raises(ValueError, match=rf"one output per holdout row \({ROWS}\), found 10"):
        paired_bootstrap("accuracy", y, y, y[:10])


def test_identical_models_have_a_zero_interval() -> None:
    y, _ = _binary()
    p = _proba(y, 1.0, 1)
    assert paired_bootstrap("roc_auc", y, p, p, n_resamples=200, confidence=0.95, seed=0) == (0.0, 0.0, 0.0)


def test_interval_is_paired() -> None:
    """A challenger better on every row by a hair gets a tight positive interval only when paired."""
    y, _ = _binary()
    champion = _proba(y, 0.5, 1)
    challenger = np.where(y == 1, champion + 0.01, champion - 0.01)
    delta, low, high = paired_bootstrap("log_loss", y, champion, challenger, n_resamples=500, seed=0)
    assert 0 < low <= delta <= high
    assert high - low < 0.2 * delta  # unpaired intervals would be dominated by row difficulty


def test_direction_makes_positive_mean_better() -> None:
    y, _ = _binary()
    good, bad = _proba(y, 2.0, 1), _proba(y, 0.3, 2)
    for metric in ("roc_auc", "log_loss"):
        delta, low, _ = paired_bootstrap(metric, y, bad, good, n_resamples=300)
        assert delta > 0, metric
        assert low > 0, metric
    regression_y = np.random.default_rng(0).normal(size=ROWS)
    close = regression_y + np.random.default_rng(1).normal(0, 0.1, ROWS)
    far = regression_y + np.random.default_rng(2).normal(0, 1.0, ROWS)
    assert paired_bootstrap("rmse", regression_y, far, close, n_resamples=300)[1] > 0
    assert paired_bootstrap("rmse", regression_y, far, close, n_resamples=300, direction="maximize")[2] < 0


def test_seed_makes_the_bootstrap_deterministic() -> None:
    y, _ = _binary()
    a, b = _proba(y, 1.0, 1), _proba(y, 1.05, 2)
    first = paired_bootstrap("roc_auc", y, a, b, n_resamples=300, seed=5)
    assert paired_bootstrap("roc_auc", y, a, b, n_resamples=300, seed=5) == first
    assert paired_bootstrap("roc_auc", y, a, b, n_resamples=300, seed=6) != first


def test_bootstrap_at_scale_gives_an_interval() -> None:
    """1000 paired resamples of 10k rows (ROC AUC and accuracy) give an interval around the estimate.

    Its speed is measured in bench/promotion.py, not asserted here (a timed assertion fails on a busy machine).
    """
    y, _ = _binary(rows=10_000)
    a, b = _proba(y, 1.0, 1), _proba(y, 1.0, 2)
    for result in (
        paired_bootstrap("roc_auc", y, a, b, n_resamples=1000, seed=0),
        paired_bootstrap("accuracy", y, (a > 0.5).astype(int), (b > 0.5).astype(int), n_resamples=1000, seed=0),
    ):
        improvement, low, high = result
        assert low <= improvement <= high
        assert 0 < high - low < 0.1


# ---------------------------------------------------------------------------- judge_offline


def _policy(**fields: object) -> PromotionPolicy:
    return PromotionPolicy.model_validate({"bootstrap_samples": 500, **fields})


def _judge(policy: PromotionPolicy, y: np.ndarray, champion: object, challenger: object, **kw: object) -> Verdict:
    return judge_offline(
        policy,
        metric="roc_auc",
        direction="maximize",
        y_true=y,
        champion_output=champion,
        challenger_output=challenger,
        **kw,
    )


def test_identical_models_are_never_promoted() -> None:
    y, _ = _binary()
    p = _proba(y, 1.0, 1)
    verdict = _judge(_policy(), y, p, p)
    assert verdict.decision == "reject"
    assert "does not clear the required improvement 0" in verdict.reasons[0]
    assert verdict.evidence["primary"]["ci_low"] == 0.0


def test_equal_models_are_rarely_promoted() -> None:
    """Two draws of equally good models: at 95% the gate promotes far less often than half the time."""
    y, _ = _binary()
    promoted = sum(
        _judge(_policy(), y, _proba(y, 1.0, 2 * i), _proba(y, 1.0, 2 * i + 1), seed=i).promoted for i in range(40)
    )
    assert promoted <= 5


def test_clearly_better_challenger_is_promoted_with_numbers_in_the_reason() -> None:
    y, _ = _binary()
    champion, challenger = _proba(y, 0.8, 1), _proba(y, 1.5, 2)
    verdict = _judge(_policy(), y, champion, challenger, seed=3)
    assert verdict.decision == "promote"
    primary = verdict.evidence["primary"]
    assert primary["ci_low"] > 0
    assert primary["champion"] == pytest.approx(skm.roc_auc_score(y, champion))
    assert primary["challenger"] == pytest.approx(skm.roc_auc_score(y, challenger))
    reason = verdict.reasons[0]
    assert reason.startswith("roc_auc: challenger ")
    assert f"{primary['challenger']:.4g}" in reason
    assert "95% paired-bootstrap interval" in reason
    assert "lies above the required improvement 0" in reason
    assert verdict.evidence["seed"] == 3
    assert verdict.evidence["rows"] == ROWS
    assert verdict.evidence["n_resamples"] == 500


def test_min_improvement_absolute_and_relative() -> None:
    y, _ = _binary()
    champion, challenger = _proba(y, 0.8, 1), _proba(y, 1.2, 2)
    gain = skm.roc_auc_score(y, challenger) - skm.roc_auc_score(y, champion)
    assert 0.03 < gain < 0.2
    assert _judge(_policy(min_improvement=0.01), y, champion, challenger).promoted
    absolute = _judge(_policy(min_improvement=0.5), y, champion, challenger)
    assert absolute.decision == "reject"
    assert "required improvement 0.5 (min_improvement)." in absolute.reasons[0]
    # relative: 1% of the champion's ~0.7 is ~0.007 (passes); 50% of it is ~0.35 (fails)
    assert _judge(_policy(min_improvement=0.01, relative=True), y, champion, challenger).promoted
    relative = _judge(_policy(min_improvement=0.5, relative=True), y, champion, challenger)
    assert relative.decision == "reject"
    champion_auc = skm.roc_auc_score(y, champion)
    assert relative.evidence["primary"]["required_improvement"] == pytest.approx(0.5 * champion_auc)
    assert f"(50.00% of the champion's {champion_auc:.4g})" in relative.reasons[0]


def _fixed_and_broken(
    seed: int, rows: int, accuracy: float, fix: int, brk: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a champion right on about ``accuracy`` of them, and a challenger that fixes ``fix`` of
    its wrong rows and breaks ``brk`` of its right ones; with the indices fixed and broken."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    champion = np.where(rng.random(rows) < accuracy, y, 1 - y)
    challenger = champion.copy()
    fixed, broken = np.flatnonzero(champion != y)[:fix], np.flatnonzero(champion == y)[:brk]
    challenger[fixed], challenger[broken] = y[fixed], 1 - y[broken]
    return y, champion, challenger, fixed, broken


def test_estimate_bar_against_a_degraded_champion() -> None:
    """A small gain the interval cannot confirm: rejected under ``interval``, promoted under ``estimate``."""
    y, champion, challenger, _, _ = _fixed_and_broken(7, 300, 0.75, 16, 10)  # 16 rows fixed, 10 broken: +2 points

    def judge(bar: str, policy: PromotionPolicy | None = None) -> Verdict:
        return judge_offline(
            policy or _policy(), metric="accuracy", direction="maximize", y_true=y,
            champion_output=champion, challenger_output=challenger, bar=bar,  # type: ignore[arg-type]
        )  # fmt: skip

    interval = judge("interval")
    assert interval.decision == "reject"
    assert interval.evidence["primary"]["ci_low"] <= 0 < interval.evidence["primary"]["improvement"]
    estimate = judge("estimate")
    assert estimate.decision == "promote", estimate.reasons
    assert estimate.evidence["primary"]["bar"] == "estimate"
    assert estimate.evidence["primary"]["improvement"] == pytest.approx(6 / 300)
    assert "the champion is measured as degraded, so the point estimate decides" in estimate.reasons[0]
    # the estimate must still reach min_improvement
    short = judge("estimate", _policy(min_improvement=0.05))
    assert short.decision == "reject"
    assert "falls short of the required improvement 0.05" in short.reasons[0]


def test_estimate_bar_tie_goes_to_the_challenger_unless_it_has_the_champions_data() -> None:
    """A level score promotes a challenger on newer data; one row worse, or the champion's own data, rejects."""
    y, champion, level, fixed, broken = _fixed_and_broken(11, 24, 0.7, 3, 3)  # 3 rows fixed, 3 broken: a tie

    def judge(challenger: Any, bar: str = "estimate", *, same_data: bool = False) -> Verdict:
        return judge_offline(
            _policy(), metric="accuracy", direction="maximize", y_true=y, champion_output=champion,
            challenger_output=challenger, bar=bar, same_data=same_data,  # type: ignore[arg-type]
        )  # fmt: skip

    tie = judge(level)
    assert tie.decision == "promote", tie.reasons
    assert tie.evidence["primary"]["improvement"] == 0.0
    assert tie.evidence["primary"]["same_data"] is False
    assert tie.reasons[0].endswith(
        "so the point estimate decides, and it ties the required improvement 0 (min_improvement): "
        "a tie goes to the challenger, trained on newer data."
    )
    # the same answers on every row are a tie too: a challenger on newer data may still differ elsewhere
    assert judge(champion.copy()).decision == "promote"
    worse = level.copy()
    worse[fixed[0]] = 1 - y[fixed[0]]
    assert judge(worse).decision == "reject"
    own = judge(level, same_data=True)
    assert own.decision == "reject"
    assert own.evidence["primary"]["same_data"] is True
    assert own.reasons[0].endswith(
        "ties the required improvement 0 (min_improvement): "
        "the champion stays, as the challenger is trained on the champion's own data."
    )
    assert judge(np.where(np.arange(24) == broken[0], y, level), same_data=True).decision == "promote"  # one row better
    # the interval bar never promotes a tie
    assert judge(level, "interval").decision == "reject"


def test_estimate_bar_keeps_guards_and_segments() -> None:
    """Against a degraded champion a guard or a segment that regresses still rejects."""
    y, _ = _binary()
    champion = _proba(y, 0.8, 1)
    sharp = _proba(y, 1.5, 2)
    challenger = 1.0 / (1.0 + (1.0 / sharp - 1.0) ** 20)
    verdict = _judge(_policy(guards={"log_loss": 0.01}), y, champion, challenger, bar="estimate")
    assert verdict.decision == "reject"
    assert verdict.evidence["primary"]["passed"]
    assert not verdict.evidence["guards"]["log_loss"]["passed"]
    # a segment that regresses beyond its tolerance rejects as well
    segments = np.where(np.arange(len(y)) < len(y) // 2, "a", "b")
    worse_in_b = np.where(segments == "b", 1 - champion, challenger)
    segmented = _judge(
        _policy(segment_column="region", segment_tolerance=0.01), y, champion, worse_in_b, segments=segments,
        bar="estimate",
    )  # fmt: skip
    assert segmented.decision == "reject"
    assert segmented.evidence["segments"]["groups"]["b"]["passed"] is False


def test_guard_regression_rejects_naming_the_guard() -> None:
    """Better ranking (ROC AUC) but badly calibrated probabilities: the log_loss guard rejects."""
    y, _ = _binary()
    champion = _proba(y, 0.8, 1)
    sharp = _proba(y, 1.5, 2)
    challenger = 1.0 / (1.0 + (1.0 / sharp - 1.0) ** 20)  # same ranking as `sharp`, overconfident
    verdict = _judge(
        _policy(guards={"log_loss": 0.01, "accuracy": 0.5}),
        y,
        champion,
        challenger,
        guard_outputs={"accuracy": ((champion > 0.5).astype(int), (challenger > 0.5).astype(int))},
    )
    assert verdict.decision == "reject"
    guard = verdict.evidence["guards"]["log_loss"]
    assert not guard["passed"]
    assert guard["regression"] > 0.01
    assert verdict.evidence["guards"]["accuracy"]["passed"]
    assert verdict.evidence["primary"]["passed"]
    assert verdict.reasons == [
        f"Guard log_loss regressed by {guard['regression']:.4g} (challenger {guard['challenger']:.4g} vs champion "
        f"{guard['champion']:.4g}), more than its bound 0.01."
    ]


def test_guard_needing_other_outputs_must_be_given() -> None:
    y, _ = _binary()
    with pytest.raises(ValueError, match=r"guard 'accuracy' needs labels: pass guard_outputs\['accuracy'\]"):
        _judge(_policy(guards={"accuracy": 0.01}), y, _proba(y, 1, 1), _proba(y, 1, 2))


def test_passing_guards_and_segments_are_reported_on_promotion() -> None:
    y, _ = _binary()
    segments = np.where(np.arange(ROWS) % 2 == 0, "north", "south")
    verdict = _judge(
        _policy(guards={"log_loss": 0.05}, segment_column="region"),
        y,
        _proba(y, 0.8, 1),
        _proba(y, 1.5, 2),
        segments=segments,
    )
    assert verdict.decision == "promote"
    assert verdict.reasons[1].startswith("Guard log_loss: challenger ")
    assert verdict.reasons[2].startswith("All 2 segments of region are within the roc_auc tolerance 0.02")
    assert set(verdict.evidence["segments"]["groups"]) == {"north", "south"}


def test_a_passed_guard_says_better_unchanged_or_within_its_bound() -> None:
    """A guard the challenger improves is not called a (negative) regression."""
    from airflow_mlops.core.offline_gate import _guard_change

    assert _guard_change(-0.0992, 0.02) == "better by 0.0992"
    assert _guard_change(0.0, 0.02) == "no change"
    assert _guard_change(0.01, 0.02) == "a regression of 0.01 within its bound 0.02"
    y, _ = _binary()
    verdict = _judge(_policy(guards={"log_loss": 0.05}), y, _proba(y, 0.8, 1), _proba(y, 1.5, 2))
    guard = verdict.evidence["guards"]["log_loss"]
    said = next(r for r in verdict.reasons if r.startswith("Guard log_loss: "))
    assert said.endswith(f", {_guard_change(guard['regression'], 0.05)}.")


def test_segment_regression_rejects_naming_the_segment() -> None:
    """Better overall, but much worse on one region: rejected, and the reason names that region."""
    y, _ = _binary()
    region = np.where(np.arange(ROWS) < 300, "east", "west")
    champion = _proba(y, 1.0, 1)
    challenger = np.where(region == "east", _proba(y, 0.1, 2), _proba(y, 2.0, 3))
    policy = _policy(segment_column="region", segment_tolerance=0.05)
    verdict = _judge(policy, y, champion, challenger, segments=region)
    assert verdict.decision == "reject"
    assert verdict.evidence["primary"]["passed"]
    east = verdict.evidence["segments"]["groups"]["east"]
    assert east["rows"] == 300
    assert not east["passed"]
    assert east["regression"] > 0.05
    assert verdict.evidence["segments"]["groups"]["west"]["passed"]
    assert len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith(
        f"Segment region='east' (300 rows): roc_auc regressed by {east['regression']:.4g}"
    )
    assert verdict.reasons[0].endswith("more than the segment tolerance 0.05.")


def test_segment_where_the_metric_is_undefined_is_skipped() -> None:
    y, _ = _binary()
    segments = np.where(y == 1, "only_positive", "mixed")
    segments[:10] = "mixed"
    verdict = _judge(_policy(), y, _proba(y, 0.8, 1), _proba(y, 1.5, 2), segments=segments)
    groups = verdict.evidence["segments"]["groups"]
    assert "skipped" in groups["only_positive"]
    assert verdict.decision == "promote"


def test_every_failing_check_is_listed() -> None:
    y, _ = _binary()
    region = np.where(np.arange(ROWS) < 300, "east", "west")
    champion = _proba(y, 1.5, 1)
    challenger = np.where(region == "east", _proba(y, 0.1, 2), _proba(y, 1.4, 3))
    verdict = _judge(_policy(guards={"log_loss": 0.0}), y, champion, challenger, segments=region)
    assert verdict.decision == "reject"
    assert [r.split(" ")[0] for r in verdict.reasons] == ["roc_auc:", "Guard", "Segment"]


@pytest.mark.parametrize(
    ("mode", "decision", "phrase"),
    [("promote", "promote", "is promoted"), ("require_manual", "reject", "needs a manual promotion")],
)
def test_cold_start(mode: str, decision: str, phrase: str) -> None:
    y, _ = _binary()
    p = _proba(y, 1.0, 1)
    verdict = _judge(_policy(cold_start=mode), y, None, p)
    assert verdict.decision == decision
    assert verdict.reasons == [
        f"No champion exists yet and cold_start is {mode!r}: the first model (roc_auc "
        f"{skm.roc_auc_score(y, p):.4g} on {ROWS} holdout rows) {phrase}."
    ]
    assert verdict.evidence["cold_start"] is True


def test_minimize_metric_from_the_spec() -> None:
    """The primary metric and direction come from the spec; log_loss improves downwards."""
    spec = PipelineSpec.from_dict(spec_dict(metric={"name": "log_loss"}, promotion={"bootstrap_samples": 300}))
    y, _ = _binary()
    worse, better = _proba(y, 0.5, 1), _proba(y, 1.5, 2)
    verdict = judge_offline(
        spec.promotion,
        metric=spec.metric.name,
        direction=spec.metric.resolved_direction,
        y_true=y,
        champion_output=worse,
        challenger_output=better,
    )
    assert verdict.decision == "promote"
    assert verdict.evidence["direction"] == "minimize"
    assert verdict.evidence["primary"]["challenger"] < verdict.evidence["primary"]["champion"]


def test_judge_is_deterministic_and_json_round_trips() -> None:
    y, _ = _binary()
    region = np.where(np.arange(ROWS) % 3 == 0, "a", "b")
    args = (_policy(guards={"log_loss": 0.1}), y, _proba(y, 1.0, 1), _proba(y, 1.1, 2))
    first = _judge(*args, segments=region, seed=9)
    again = _judge(*args, segments=region, seed=9)
    assert first == again
    restored = Verdict.from_dict(json.loads(json.dumps(first.as_dict(), allow_nan=False)))
    assert restored == first


def test_verdict_from_dict_rejects_unknown_decision() -> None:
    with pytest.raises(
        ValueError, match=r"decision: expected one of \['promote', 'reject', 'keep_testing', 'rollback'\]"
    ):
        Verdict.from_dict({"decision": "maybe", "reasons": [], "evidence": {}})


def test_segments_below_segment_min_rows_are_not_judged() -> None:
    """One segment a row (a zip code): any single answer failed the tolerance and rejected a better challenger."""
    y, _ = _binary()
    zips = np.array([f"z{i % 400}" for i in range(ROWS)])  # 5 holdout rows a value
    champion, challenger = _proba(y, 0.5, 1), _proba(y, 2.0, 2)
    policy = _policy(segment_column="zip", segment_tolerance=0.0)
    verdict = _judge(policy, y, champion, challenger, segments=zips)
    assert verdict.decision == "promote"
    assert verdict.reasons[-1] == "No segment of zip has 30 holdout rows (400 segments): none judged."
    assert verdict.evidence["segments"]["groups"]["z7"] == {"rows": 5, "skipped": "fewer than segment_min_rows (30)"}
    mixed = np.where(np.arange(ROWS) < 1000, "big", zips)
    verdict = _judge(policy, y, champion, challenger, segments=mixed)
    assert verdict.reasons[-1].startswith("All 1 judged segments of zip are within the roc_auc tolerance 0.0")
    assert verdict.reasons[-1].endswith("; 400 with fewer than 30 rows not judged.")
    worse = np.where(mixed == "big", champion - 0.3 * (y - 0.5), challenger)  # worse on the big segment only
    verdict = _judge(policy, y, champion, worse, segments=mixed)
    assert verdict.decision == "reject"
    assert verdict.reasons[-2].startswith("Segment zip='big' (1000 rows): roc_auc regressed by ")
    assert verdict.reasons[-1] == "Segments of zip: 400 with fewer than 30 rows not judged."
