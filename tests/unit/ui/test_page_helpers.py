"""Small pure helpers of the MLOps pages: the history form's time field, code spans, ledger rows in words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_mlops.ui.pages import parse_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-04T13:57", datetime(2026, 12, 4, 13, 57, tzinfo=UTC)),
        ("2026-12-04T13:57:00Z", datetime(2026, 12, 4, 13, 57, tzinfo=UTC)),
        ("2026-12-04T13:57:00+05:00", datetime(2026, 12, 4, 8, 57, tzinfo=UTC)),
        ("2026-12-04T13:57:00 05:00", datetime(2026, 12, 4, 8, 57, tzinfo=UTC)),  # '+' decoded as a space
        ("2026-12-04 13:57:00.5 05:30", datetime(2026, 12, 4, 8, 27, 0, 500000, tzinfo=UTC)),
        ("2026-12-04 13:57", datetime(2026, 12, 4, 13, 57, tzinfo=UTC)),
        ("2026-12-04 13:57:00 UTC", datetime(2026, 12, 4, 13, 57, tzinfo=UTC)),  # as the pages print a time
        ("2026-12-04T13:57 utc", datetime(2026, 12, 4, 13, 57, tzinfo=UTC)),
        ("  ", None),
        (None, None),
    ],
)
def test_times_are_read_in_utc(text: str | None, expected: datetime | None) -> None:
    moment = parse_time(text)
    assert moment == expected
    assert moment is None or moment.tzinfo is UTC


@pytest.mark.parametrize(
    "text", ["yesterday", "99999-01-01", "2026-13-01", "0001-01-01T00:00+05:00", "2026-12-04 13:57 UTC+05:00"]
)
def test_a_bad_time_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):  # the page shows it as a notice naming the time
        parse_time(text)


def test_code_spans_escape_and_mark_backquoted_parts() -> None:
    from airflow_mlops.ui.pages import code_spans

    assert code_spans("run `p_train` <now>") == "run <code>p_train</code> &lt;now&gt;"
    assert code_spans("a lone ` stays") == "a lone ` stays"


def test_timestamps_are_written_in_utc_to_the_second() -> None:
    from airflow_mlops.ui.views import when

    assert when(datetime(2026, 12, 4, 13, 58, 14, 753664, tzinfo=UTC)) == "2026-12-04 13:58:14 UTC"
    assert when("2026-12-04 18:58:14.753664+05:00") == "2026-12-04 13:58:14 UTC"
    assert when("not a time") == "not a time"
    assert when(None) == ""


def test_evidence_files_link_to_their_run_in_the_mlflow_ui() -> None:
    from types import SimpleNamespace

    from airflow_mlops.ui.views import evidence_link

    sources = SimpleNamespace(run_url=lambda experiment, run: f"http://mlflow/#/experiments/{experiment}/runs/{run}")
    uri = "runs:/abc123/promotion/verdict-manual__v1.json"
    assert evidence_link(sources, "7", uri) == (  # type: ignore[arg-type]
        "http://mlflow/#/experiments/7/runs/abc123/artifacts/promotion/verdict-manual__v1.json"
    )
    assert evidence_link(sources, "7", "runs:/r/p/verdict-x+00_00 y.json") == (  # type: ignore[arg-type]
        "http://mlflow/#/experiments/7/runs/r/artifacts/p/verdict-x+00_00%20y.json"  # MLflow's UI reads %2B as is
    )
    assert evidence_link(sources, None, uri) == ""  # type: ignore[arg-type]
    assert evidence_link(sources, "7", "s3://bucket/verdict.json") == ""  # type: ignore[arg-type]


def test_a_report_gets_a_title_only_where_its_head_has_none() -> None:
    from airflow_mlops.ui.pages import titled

    report = "<html><head><meta charset='UTF-8'></head><body><svg><title>logo</title></svg></body></html>"
    assert titled(report, "Drift report · p & q") == (
        "<html><head>\n<title>Drift report · p &amp; q</title><meta charset='UTF-8'></head>"
        "<body><svg><title>logo</title></svg></body></html>"
    )
    named = "<html><head><title>Mine</title></head><body></body></html>"
    assert titled(named, "x") == named
    assert titled("no head here", "x") == "no head here"


def test_a_report_gets_a_line_saying_what_it_is_and_a_way_back() -> None:
    """The report page had no heading and no link back to the Monitoring page."""
    from airflow_mlops.ui.pages import with_heading

    page = with_heading("<html><body class='x'><p>r</p></body></html>", "Drift report · p & q", "../m?p=a&b")
    assert page.startswith("<html><body class='x'><div style=")
    assert '<a href="../m?p=a&amp;b">&larr; Monitoring</a> · Drift report · p &amp; q</div><p>r</p>' in page
    assert with_heading("no body", "t", "b") == "no body"


@pytest.mark.parametrize(
    ("action", "alias", "before", "after", "expected"),
    [
        ("promote", "champion", None, "1", "champion none → v1"),
        ("promote", "champion", "1", "2", "champion v1 → v2"),
        ("rollback", "champion", "3", "2", "champion v3 → v2 (back to the previous champion)"),
        ("rollback", "challenger", None, "3", "challenger v3 withdrawn from the A/B split"),
        ("keep_testing", "challenger", None, "3", "challenger v3 stays in the A/B test"),
        ("reject", "champion", "2", "3", "v3 not promoted; champion stays v2"),
        ("reject", "champion", None, "1", "v1 not promoted; no champion yet"),
    ],
)
def test_a_ledger_row_says_what_moved_and_what_stayed(
    action: str, alias: str, before: str | None, after: str | None, expected: str
) -> None:
    from airflow_mlops.core.ledger import LedgerRow
    from airflow_mlops.ui.views import ledger_change

    row = LedgerRow(1, "m", alias, action, before, after, [], None, None, None, None, None, datetime.now(UTC))
    assert ledger_change(row) == expected


def test_a_run_of_keep_testing_rows_about_one_challenger_shows_as_its_newest() -> None:
    from airflow_mlops.ui.views import collapse_repeats

    def row(id_: int, action: str, version: str) -> dict[str, object]:
        return {"id": id_, "action": action, "to_version": version, "created": f"t{id_}"}

    newest_first = [row(7, "promote", "3"), row(6, "keep_testing", "3"), row(5, "keep_testing", "3"),
                    row(4, "keep_testing", "3"), row(3, "keep_testing", "2"), row(2, "promote", "1")]  # fmt: skip
    shown = collapse_repeats(newest_first)
    assert [(r["id"], r["earlier"], r["since"]) for r in shown] == [
        (7, [], None),
        (6, [5, 4], "t4"),
        (3, [], None),  # another challenger: its own row
        (2, [], None),
    ]


def test_a_request_of_another_model_is_not_traced_under_this_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two pipelines may share a prediction log; a request answered by the other's model says so."""
    from airflow_mlops.core.lineage import TraceNotFoundError
    from airflow_mlops.pipeline_sources import PipelineSources
    from airflow_mlops.spec import PipelineSpec
    from airflow_mlops.ui import views
    from tests.support.specs import spec_dict

    live = PipelineSources(PipelineSpec.from_dict({**spec_dict(level=4), "name": "churn_live"}))
    chain = {"prediction": {}, "model_version": {"name": "churn_auto"}, "mlflow_run": {}, "airflow": {}}
    monkeypatch.setattr(PipelineSources, "trace", lambda self, request_id: chain)
    with pytest.raises(TraceNotFoundError, match="'ab-1' was answered by model 'churn_auto', not by 'churn_live'"):
        views.trace_chain(live, "ab-1")
