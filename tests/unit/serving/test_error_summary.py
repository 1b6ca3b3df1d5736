"""The 422 detail of a large batch stays short: rows with the same problem are one part, not one a row."""

from __future__ import annotations

from airflow_mlops.serving.schema import FieldError, summarize


def test_ten_thousand_rows_with_the_same_extra_column_are_one_part() -> None:
    """Each row was its own part: a 387 KB detail for a 10,000-row batch with one misspelled column."""
    errors = [FieldError(("rows", i, "features", "agee"), "extra", "unexpected field") for i in range(10_000)]
    errors += [FieldError(("rows", i, "features", "age"), "missing", "missing required column") for i in range(10_000)]
    errors.append(FieldError(("rows", 7, "features", "plan"), "missing", "missing required column"))
    detail = summarize(errors)
    assert len(detail) < 600
    assert detail == (
        "rows[0].features, rows[1].features, rows[2].features, ... (9999 places): missing required column(s) 'age'; "
        "rows[7].features: missing required column(s) 'age', 'plan'; "
        "rows[0].features, rows[1].features, rows[2].features, ... (10000 places): unexpected column(s) 'agee'"
    )
