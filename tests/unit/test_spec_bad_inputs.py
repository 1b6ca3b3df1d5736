"""Spec inputs a reviewer tries: YAML 1.1 surprises, names that break DAGs, contradictions, files that clash."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from airflow_mlops.exceptions import PipelineSpecError
from airflow_mlops.spec import PipelineSpec
from airflow_mlops.spec_files import check_spec_files, spec_paths
from tests.support.specs import spec_dict

if TYPE_CHECKING:
    from pathlib import Path


def _error(**overrides: Any) -> str:
    with pytest.raises(PipelineSpecError) as err:
        PipelineSpec.from_dict(spec_dict(**overrides), origin="p.yaml")
    return str(err.value)


def _write(folder: Path, file: str, extra: str = "", **overrides: Any) -> Path:
    path = folder / file
    path.write_text(yaml.safe_dump(spec_dict(**overrides)) + extra, encoding="utf-8")
    return path


def test_yaml_scalars_follow_the_core_schema(tmp_path: Path) -> None:
    """``off`` is the word off, ``010`` is ten, ``1:30`` and a date stay text: no YAML 1.1 conversions."""
    extra = (
        "split: {seed: 010}\nmonitoring: {change_detector: {method: off}}\ntags: {since: 2024-01-01, team: no}\n"
        "estimator: {class: sklearn.linear_model.LogisticRegression, params: {max_iter: 1_000, tol: 1_0.5e-4}}\n"
    )
    base = {k: v for k, v in spec_dict(level=4).items() if k != "estimator"}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(base) + extra, encoding="utf-8")
    spec = PipelineSpec.from_yaml(tmp_path / "p.yaml")
    assert spec.split.seed == 10
    assert spec.estimator.params == {"max_iter": 1000, "tol": 10.5e-4}
    assert spec.monitoring.change_detector.method == "off"
    assert spec.tags == {"since": "2024-01-01", "team": "no"}

    path = _write(tmp_path, "q.yaml", "monitoring: {window_hours: 1:30}\nserving: {shared_server: yes}\n")
    with pytest.raises(PipelineSpecError) as err:
        PipelineSpec.from_yaml(path)
    assert "monitoring.window_hours: expected a valid number, found '1:30'" in str(err.value)
    assert "serving.shared_server: expected a valid boolean, found 'yes' (write true or false" in str(err.value)


@pytest.mark.parametrize(
    ("value", "tag"),
    [("!!set {plan: null, region: null}", "!!set"), ("!!python/tuple [plan]", "!!python/tuple"), ("!x [plan]", "!x")],
)
def test_tags_other_than_plain_values_are_refused(tmp_path: Path, value: str, tag: str) -> None:
    """A set has no order (the features would change order between processes); objects are never built."""
    text = yaml.safe_dump({k: v for k, v in spec_dict().items() if k != "features"}) + f"features: {value}\n"
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    line = text.count("\n")
    with pytest.raises(PipelineSpecError, match=f"found the tag {tag} at line {line}$"):
        PipelineSpec.from_yaml(tmp_path / "p.yaml")


def test_a_scoring_table_of_another_database_or_a_quoted_source_of_another_case_is_no_clash() -> None:
    """Tables reached through two connections are two tables; the extraction quotes its source table."""
    other_db = spec_dict(level=2, scoring={"table": "customers", "conn_id": "analytics"},
                         source={"kind": "postgres", "table": "public.customers", "conn_id": "warehouse"})  # fmt: skip
    PipelineSpec.from_dict(other_db)
    quoted = spec_dict(level=2, scoring={"table": "customers"}, source={"kind": "postgres", "table": "Customers"})
    PipelineSpec.from_dict(quoted)  # "Customers" (quoted, as read) and customers (unquoted, as written)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"name": "churn\n"},
            "name: expected ASCII letters, digits and underscores starting with a letter, found 'churn\\n'",
        ),
        ({"source": {"kind": "postgres", "table": "public.t\n"}}, "found 'public.t\\n'"),
        ({"serving": {"log_table": "log\n"}}, "serving.log_table: expected a table name"),
        ({"tags": {"team": "x" * 101}}, "tags.team: expected at most 100 characters, found 'xxx"),
        ({"tags": {"team": ""}}, "tags.team: expected at least 1 character, found ''"),
        ({"split": {"seed": -5}}, "split.seed: expected greater than or equal to 0"),
        ({"split": {"seed": 2**64}}, "split.seed: expected less than or equal to 4294967295"),
        ({"target": ""}, "target: expected at least 1 character, found ''"),
        ({"features": ["", "plan"]}, "features: expected column names, found an empty one"),
        (
            {"target": "updated_at", "features": None},
            "source.timestamp_column: expected a column other than the target",
        ),
        (
            {"promotion": {"segment_column": "churned"}},
            "promotion.segment_column: expected a column other than the target",
        ),
        (
            {"serving": {"log_table": "t", "feedback_table": "t"}},
            "serving.feedback_table: expected a table other than serving.log_table ('t'), found 't'",
        ),
        # unquoted names fold to lower case, and an unqualified one is public's: one table each time
        ({"serving": {"log_table": "public.T", "feedback_table": "public.t"}}, "found 'public.t'"),
        (
            {"serving": {"log_table": "mlops_feedback", "feedback_table": "public.mlops_feedback"}},
            "serving.feedback_table: expected a table other than serving.log_table ('mlops_feedback')",
        ),
        (
            {
                "level": 2,
                "scoring": {"table": "public.Customers"},
                "source": {"kind": "postgres", "table": "customers"},
            },
            "scoring.table: expected a table other than the scored source table ('customers' on postgres_default)",
        ),
        (
            {"level": 2, "scoring": {"table": "mlops_prediction_log"}},
            "scoring.table: expected a table other than serving.log_table ('mlops_prediction_log' on postgres_default)",
        ),
        (
            {"source": {"kind": "postgres", "table": "t", "timestamp_column": ""}},
            "source.timestamp_column: expected at least 1 character",
        ),
        ({"promotion": {"segment_column": ""}}, "promotion.segment_column: expected at least 1 character"),
        ({"level": 2, "scoring": {"uri": "/tmp/out", "key_column": ""}}, "scoring.key_column: expected at least 1"),
        (
            {"metric": {"name": "roc_auc", "direction": "minimize"}},
            "metric.direction: expected 'maximize' for roc_auc (or no direction), found 'minimize'",
        ),
        (
            {"estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": {"C": math.nan}}},
            "estimator.params: C: expected a finite number, found nan",
        ),
        ({"level": 1, "schedule": "0 3 * * *"}, "schedule: expected level 2 or higher for scheduled training"),
        ({"mlflow": {"registered_model": "../../etc/passwd"}}, "mlflow.registered_model: expected a name without '/'"),
        ({"mlflow": {"registered_model": "churn:v2"}}, "found 'churn:v2'"),
        ({"mlflow": {"registered_model": " "}}, "mlflow.registered_model: expected a name, found ' '"),
        ({"mlflow": {"registered_model": "..churn"}}, "does not start with '..' (MLflow's rule), found '..churn'"),
        # MLflow takes it, but every search the pages and operators make (name = '...') broke on it
        ({"mlflow": {"registered_model": "churn's"}}, "expected a name without quotes or backslashes"),
        ({"source": {"kind": "files", "uri": "/data/x\0.csv"}}, "source.uri: expected a path or URI, found a NUL"),
        ({"mlflow": {"experiment": ""}}, "mlflow.experiment: expected at least 1 character"),
        ({"mlflow": {"conn_id": ""}}, "mlflow.conn_id: expected at least 1 character"),
        ({"storage": ""}, "storage: expected at least 1 character"),
    ],
)
def test_values_that_would_fail_later_are_refused_now(overrides: dict[str, Any], expected: str) -> None:
    """Each of these passed validation before and failed at DAG parse or at run time (or never)."""
    assert expected in _error(**overrides)


def test_query_parameters_are_checked_when_the_spec_is_read() -> None:
    query = "select * from t where region = %(region)s and plan = %(plan)s"
    source = {"kind": "postgres", "query": query, "parameters": {"plan": "basic"}}
    assert (
        "source: query: expected a value in 'parameters' for each %(name)s placeholder, found none for ['region']"
        in (_error(source=source))
    )
    source = {"kind": "postgres", "table": "t", "parameters": {"mlops_as_of": "2026-01-01"}}
    assert "parameters: ['mlops_as_of'] are set by the pipeline" in _error(source=source)
    source = {"kind": "postgres", "table": "t", "parameters": {"x": [1.0, math.inf]}}
    assert "source.parameters: x.1: expected a finite number, found inf" in _error(source=source)


def test_a_uri_that_names_no_path_is_one_error_naming_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "nul.yaml", source={"kind": "files", "uri": "data/x\0.csv"})
    with pytest.raises(PipelineSpecError, match=r"nul.yaml: source.uri: expected a path or URI, found a NUL character"):
        PipelineSpec.from_yaml(path)
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    path = _write(tmp_path, "loop.yaml", source={"kind": "files", "uri": "loop/x.csv"})
    with pytest.raises(PipelineSpecError, match=r"loop.yaml: source.uri: cannot resolve 'loop/x.csv'"):
        PipelineSpec.from_yaml(path)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"source": {"uri": "x.csv"}}, "source.kind: required field is missing (postgres or files)"),
        ({"source": {"kind": "mysql"}}, "source.kind: expected one of 'postgres', 'files', found 'mysql'"),
        ({"estimator": None}, "estimator: expected a valid dictionary, found None"),
        ({"source": None}, "source: expected a valid dictionary, found None"),
    ],
)
def test_messages_name_the_field_in_our_words(overrides: dict[str, Any], expected: str) -> None:
    """Pydantic's wording of a discriminated union or a model type would name its internals."""
    assert f"\n  {expected}" in _error(**overrides)


def test_an_empty_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(PipelineSpecError, match="expected a mapping of fields at the top level, found nothing"):
        PipelineSpec.from_yaml(tmp_path / "empty.yaml")


def test_files_are_read_once_and_a_registered_model_has_one_pipeline(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.yaml")
    second = _write(tmp_path, "b.YAML", name="other", mlflow={"registered_model": "churn"})
    assert spec_paths(tmp_path) == [first, second]  # any case of the suffix
    checked = check_spec_files([first, first, tmp_path / "." / "a.yaml", second])
    assert [s.name for s in checked.specs] == ["churn"]
    assert checked.origins == {"churn": str(first)}
    assert checked.errors == {
        str(second): f"{second}: mlflow.registered_model: 'churn' is already the registered model of {first} "
        "(two pipelines would move one champion)"
    }


def test_two_pipelines_may_not_score_into_one_table(tmp_path: Path) -> None:
    """Their prediction ids (digest, version, row) collided: a raw UniqueViolation after scoring everything."""
    first = _write(tmp_path, "a.yaml", scoring={"table": "Fair_Scores"})
    second = _write(tmp_path, "b.yaml", name="other", scoring={"table": "public.fair_scores"})
    elsewhere = _write(tmp_path, "c.yaml", name="third", scoring={"table": "fair_scores", "conn_id": "warehouse"})
    checked = check_spec_files([first, second, elsewhere])
    assert [s.name for s in checked.specs] == ["churn", "third"]  # another connection is another database
    assert checked.errors == {
        str(second): f"{second}: scoring: the table public.fair_scores of connection postgres_default already holds "
        f"the batch predictions of {first} (two pipelines' prediction ids would collide there)"
    }


def test_an_unforeseen_failure_of_one_file_does_not_hide_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, bad = _write(tmp_path, "a.yaml"), _write(tmp_path, "b.yaml", name="other")
    real = PipelineSpec.from_yaml.__func__  # type: ignore[attr-defined]

    def from_yaml(cls: type[PipelineSpec], path: Path) -> PipelineSpec:
        if path == bad:
            raise RuntimeError("something no rule foresaw")
        return real(cls, path)  # type: ignore[no-any-return]

    monkeypatch.setattr(PipelineSpec, "from_yaml", classmethod(from_yaml))
    checked = check_spec_files([good, bad])
    assert [s.name for s in checked.specs] == ["churn"]
    assert checked.errors == {str(bad): f"{bad}: cannot load the spec (RuntimeError: something no rule foresaw)"}


def test_a_missing_folder_has_no_specs_and_a_broken_link_is_reported(tmp_path: Path) -> None:
    assert spec_paths(tmp_path / "nope") == []
    os.symlink(tmp_path / "gone.yaml", tmp_path / "dangling.yaml")
    assert spec_paths(tmp_path) == [tmp_path / "dangling.yaml"]
    checked = check_spec_files(spec_paths(tmp_path))
    assert checked.errors[str(tmp_path / "dangling.yaml")].endswith(
        "cannot read the spec file: No such file or directory"
    )


@pytest.mark.parametrize(
    ("overrides", "hint"),
    [
        ({"level": "2"}, "level: expected a valid integer, found '2' (quoted, so text: remove the quotes)"),
        ({"validation": {"min_rows": "1e3"}}, "found '1e3' (quoted, so text: remove the quotes)"),
        ({"retries": None}, "retries: expected a valid integer, found None (the key has no value)"),
        (
            {"estimator": {"class": "sklearn.linear_model.LogisticRegression", "params": None}},
            "estimator.params: expected a valid dictionary, found None (the key has no value)",
        ),
        (
            {"estimator": {"class": "nosuchpkg.Model"}},
            "module 'nosuchpkg' is not installed, and 'nosuchpkg' is not an allowed estimator module (allowed:",
        ),
    ],
)
def test_a_message_says_what_the_user_wrote_that_looks_right(overrides: dict[str, Any], hint: str) -> None:
    """'2' looked like a number, a bare key like an empty one, an uninstalled module like the only problem."""
    with pytest.raises(PipelineSpecError) as info:
        PipelineSpec.from_dict(spec_dict(**overrides))
    assert hint in str(info.value)


def test_a_tab_in_the_indentation_is_named(tmp_path: Path) -> None:
    path = tmp_path / "churn.yaml"
    path.write_text("name: churn\nlevel: 2\nestimator:\n\tclass: x\n")
    with pytest.raises(PipelineSpecError, match=r"line 4 holds a tab: YAML indents with spaces only"):
        PipelineSpec.from_yaml(path)


def test_nan_is_not_called_a_quoted_number() -> None:
    with pytest.raises(PipelineSpecError) as info:
        PipelineSpec.from_dict(spec_dict(retries="nan"))
    assert "quoted" not in str(info.value)
