"""Batch scoring's pure chunk logic: the row checks, the bad-row report, the digest and the outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_mlops.core.batch_scoring import BatchScorer, BatchScoringError, key_text, outputs
from airflow_mlops.core.row_checks import SAMPLE_SIZE, FeatureColumn, check_chunk

COLUMNS = [
    FeatureColumn("age", "long"),
    FeatureColumn("income", "double"),
    FeatureColumn("plan", "string"),
    FeatureColumn("note", "string", required=False),
]


def _frame(**overrides: list[object]) -> pd.DataFrame:
    data: dict[str, list[object]] = {
        "id": [1, 2, 3, 4],
        "age": [30, 41, 52, 63],
        "income": [1.5, 2.5, 3.5, 4.5],
        "plan": ["a", "b", "a", "b"],
        "note": ["x", None, "y", None],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def test_good_chunk_keeps_every_row_in_signature_order() -> None:
    features, good, bad, sample = check_chunk(_frame(), COLUMNS, offset=0)
    assert bad == 0
    assert sample == []
    assert good.all()
    assert list(features.columns) == ["age", "income", "plan", "note"]
    assert features["age"].dtype == np.float64
    assert features["note"].tolist() == ["x", None, "y", None]


def test_bad_rows_are_left_out_and_named_with_their_ordinal() -> None:
    frame = _frame(age=[30, None, "old", 2.5], income=[1.0, 2.0, float("inf"), 4.0], plan=["a", "b", 7, "b"])
    features, good, bad, sample = check_chunk(frame, COLUMNS, offset=100)
    assert good.tolist() == [True, False, False, False]
    assert bad == 3
    assert len(features) == 1
    assert features["age"].tolist() == [30.0]
    problems = {(p["row"], p["column"], p["problem"]) for p in sample}
    assert (101, "age", "required value is null") in problems
    assert (102, "age", "expected a number (long)") in problems
    assert len(sample) == SAMPLE_SIZE
    assert all(p["row"] in (101, 102, 103) for p in sample)


def test_whole_number_and_string_rules() -> None:
    frame = _frame(age=[30, 31.5, 32, 33], plan=["a", "b", 3, "d"])
    _, good, bad, sample = check_chunk(frame, COLUMNS, offset=0)
    assert good.tolist() == [True, False, False, True]
    assert bad == 2
    assert {(p["row"], p["problem"]) for p in sample} == {(1, "expected a whole number"), (2, "expected a string")}
    assert sample[0]["value"] == "31.5"


def _constant(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    p1 = frame["income"].to_numpy() / 10
    return (p1 > 0.3).astype(int), np.column_stack([1 - p1, p1])


def test_scorer_streams_chunks_and_reports_bad_rows() -> None:
    scorer = BatchScorer(COLUMNS, _constant, np.array([0, 1]), key_column="id")
    first = _frame()
    second = _frame(id=[5, 6, 7, 8], income=[None, 6.5, 7.5, 8.5])
    scored = list(scorer.score([first, second]))
    assert [len(s) for s in scored] == [4, 3]
    assert scored[1].ordinals.tolist() == [5, 6, 7]
    assert scored[1].keys == ["6", "7", "8"]
    assert scored[0].predictions.tolist() == ["0", "0", "1", "1"]
    assert scored[0].scores is not None
    assert scored[0].scores.tolist() == pytest.approx([0.15, 0.25, 0.35, 0.45])
    assert scorer.rows == 8
    assert scorer.bad.count == 1
    assert scorer.bad.sample == [{"row": 4, "column": "income", "problem": "required value is null", "value": "nan"}]
    assert "1 bad row(s), e.g. row 4: income: required value is null" in scorer.bad.describe()
    with pytest.raises(BatchScoringError, match=r"1 of 8 rows exceed max_bad_fraction 0.1"):
        scorer.require_within(0.1)
    scorer.require_within(0.125)


def test_digest_ignores_row_order_but_not_values() -> None:
    def digest(frames: list[pd.DataFrame]) -> str:
        scorer = BatchScorer(COLUMNS, _constant, np.array([0, 1]))
        list(scorer.score(frames))
        return scorer.digest

    frame = _frame()
    same = digest([frame])
    assert digest([frame.iloc[::-1].reset_index(drop=True)]) == same
    assert digest([frame.iloc[:2], frame.iloc[2:]]) == same
    assert digest([_frame(income=[1.5, 2.5, 3.5, 4.25])]) != same


def test_missing_required_column_fails_before_scoring() -> None:
    scorer = BatchScorer(COLUMNS, _constant, None, where="table scores_in")
    with pytest.raises(BatchScoringError, match=r"table scores_in: lacks the model's required column\(s\) \['plan'\]"):
        list(scorer.score([_frame().drop(columns=["plan"])]))


def test_missing_key_column_is_named() -> None:
    scorer = BatchScorer(COLUMNS, _constant, None, key_column="customer_id")
    with pytest.raises(BatchScoringError, match="key_column 'customer_id' not in"):
        list(scorer.score([_frame()]))


def test_outputs_for_each_model_kind() -> None:
    text, score = outputs(np.array([1.5, 2.0]), None, None)
    assert text.tolist() == ["1.5", "2.0"]
    assert score is not None
    assert score.tolist() == [1.5, 2.0]
    proba = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    text, score = outputs(np.array(["b", "a"]), proba, np.array(["a", "b", "c"]))
    assert text.tolist() == ["b", "a"]
    assert score is not None
    assert score.tolist() == [0.5, 0.6]
    text, score = outputs(np.array(["yes"]), None, np.array(["no", "yes"]))
    assert score is None


def test_a_null_key_leaves_the_other_integer_keys_as_integers() -> None:
    """One null made pandas read the key column as floats: every key was written '1.0', the null one 'nan'."""
    frame = _frame(id=[1.0, None, 3.0, 4.0])
    (chunk,) = list(BatchScorer(COLUMNS, _constant, np.array([0, 1]), key_column="id").score([frame]))
    assert chunk.keys == ["1", None, "3", "4"]
    texts = pd.Series(["a-1", None, "c"], dtype=object)
    assert key_text(texts).tolist() == ["a-1", None, "c"]
    assert key_text(pd.Series([1.5, 2.0])).tolist() == ["1.5", "2.0"]  # real fractions stay as they are


def test_blocks_inside_a_chunk_keep_ordinals_keys_and_the_digest() -> None:
    """A chunk scored in blocks of 3 rows yields one chunk with the same rows as unblocked scoring."""
    frame = pd.concat([_frame(), _frame(id=[5, 6, 7, 8], income=[None, 6.5, 7.5, 8.5])], ignore_index=True)
    blocked = BatchScorer(COLUMNS, _constant, np.array([0, 1]), key_column="id", block_rows=3)
    whole = BatchScorer(COLUMNS, _constant, np.array([0, 1]), key_column="id")
    (got,) = list(blocked.score([frame]))
    (want,) = list(whole.score([frame]))
    assert got.ordinals.tolist() == want.ordinals.tolist() == [0, 1, 2, 3, 5, 6, 7]
    assert got.keys == want.keys
    assert got.predictions.tolist() == want.predictions.tolist()
    assert blocked.digest == whole.digest
    assert blocked.bad.as_dict() == whole.bad.as_dict()


def test_integer_columns_and_optional_numbers_in_the_matrix_path() -> None:
    """Numeric dtypes take the matrix path: ints are whole; an optional NaN passes, an infinity does not."""
    columns = [FeatureColumn("n", "long"), FeatureColumn("x", "double", required=False)]
    frame = pd.DataFrame({"n": [1, 2, 3], "x": [np.nan, np.inf, 0.5]})
    features, good, bad, sample = check_chunk(frame, columns, offset=0)
    assert good.tolist() == [True, False, True]
    assert bad == 1
    assert sample == [{"row": 1, "column": "x", "problem": "expected a finite number", "value": "inf"}]
    assert features["n"].tolist() == [1.0, 3.0]


def test_values_beyond_a_columns_range_are_bad_rows_as_on_the_server() -> None:
    """A double beyond float32 (a tree model fails on it) and a 33-bit ``integer`` are left out, in both paths."""
    columns = [FeatureColumn("n", "integer"), FeatureColumn("x", "double"), FeatureColumn("y", "double")]
    frame = pd.DataFrame({"n": [1, 2**31, 3, -(2**31)], "x": [0.5, 0.5, -1e39, 3.4e38], "y": [1.0, 2.0, 3.0, 4.0]})
    _, good, bad, sample = check_chunk(frame, columns, offset=0)
    assert good.tolist() == [True, False, False, True]
    assert bad == 2
    assert [(p["row"], p["column"]) for p in sample] == [(1, "n"), (2, "x")]
    assert "integer range (31-bit)" in sample[0]["problem"]
    assert "float32" in sample[1]["problem"]
    objects = frame.astype({"x": object})
    objects.loc[1, "x"] = 10**400  # float() of it overflows: a bad row, not an OverflowError
    _, good, bad, sample = check_chunk(objects, columns, offset=0)
    assert good.tolist() == [True, False, False, True]
    assert {(p["row"], p["column"]) for p in sample} == {(1, "n"), (1, "x"), (2, "x")}


def test_long_columns_take_any_int64_and_refuse_2_to_the_63() -> None:
    columns = [FeatureColumn("n", "long")]
    frame = pd.DataFrame({"n": [np.iinfo(np.int64).max, np.iinfo(np.int64).min]})
    assert check_chunk(frame, columns, offset=0)[2] == 0
    as_float = pd.DataFrame({"n": [2.0**63, -(2.0**63), 2.0**62]})
    assert check_chunk(as_float, columns, offset=0)[1].tolist() == [False, True, True]


def test_a_boolean_source_column_scores_as_training_read_it() -> None:
    """Training made a boolean feature 1.0/0.0 (a ``double`` in the signature); batch refused every row of it."""
    columns = [FeatureColumn("flag", "double"), FeatureColumn("x", "double")]
    for flags in ([True, False, True], pd.array([True, None, False], dtype="boolean"), [True, None, False]):
        frame = pd.DataFrame({"flag": flags, "x": [1.0, 2.0, 3.0]})
        features, good, bad, _ = check_chunk(frame, [FeatureColumn("flag", "double", required=False), columns[1]], 0)
        assert bad == 0, flags
        assert features["flag"].tolist()[0] == 1.0
        assert features["flag"].tolist()[2] in (0.0, 1.0)


def test_integer_ranges_are_compared_exactly_whatever_holds_the_integers() -> None:
    """As floats 2**63 - 1 and 2**63 are one number: a valid long was refused, an invalid one let through."""
    columns = [FeatureColumn("n", "integer", required=False), FeatureColumn("l", "long", required=False)]
    typed = pd.DataFrame(
        {
            "n": pd.array([1, None, 2**31, -(2**31)], dtype="Int64"),
            "l": np.array([2**63 - 1, 0, 2**63, 5], dtype=np.uint64),
        }
    )
    _, good, _, sample = check_chunk(typed, columns, offset=0)
    assert good.tolist() == [True, True, False, True]
    assert {(p["row"], p["column"]) for p in sample} == {(2, "n"), (2, "l")}
    objects = pd.DataFrame(
        {
            "n": pd.Series([1, 2**31 - 1, 2**31, "x"], dtype=object),
            "l": pd.Series([2**63 - 1, -(2**63) - 1, 3, None], dtype=object),
        }
    )
    _, good, _, sample = check_chunk(objects, columns, offset=0)
    assert good.tolist() == [True, False, False, False]
    assert [(p["row"], p["column"]) for p in sample] == [(1, "l"), (2, "n"), (3, "n")]


def test_one_huge_integer_in_an_object_column_is_one_bad_row() -> None:
    """float() of a 400-digit integer overflows: that cell alone is taken apart, the others converted at once."""
    values = pd.Series(np.arange(1000, dtype=float), dtype=object)
    values[7] = 10**400
    values[8] = -(10**400)
    features, good, bad, sample = check_chunk(pd.DataFrame({"x": values}), [FeatureColumn("x", "double")], offset=0)
    assert bad == 2
    assert np.flatnonzero(~good).tolist() == [7, 8]
    assert features["x"].tolist()[7] == 9.0
    assert sample[0]["problem"].startswith("expected a number within ±3.4e38")
