"""PipelineSpec: valid specs load; every invalid field fails with path, expected and found."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from airflow_mlops.exceptions import PipelineSpecError
from airflow_mlops.spec import PipelineSpec
from airflow_mlops.spec_files import load_specs
from tests.support.paths import REPO
from tests.support.specs import spec_dict


def _error(**overrides: object) -> str:
    with pytest.raises(PipelineSpecError) as err:
        PipelineSpec.from_dict(spec_dict(**overrides), origin="p.yaml")
    return str(err.value)


def test_valid_spec_defaults() -> None:
    """A minimal spec validates and fills defaults (direction inferred from the metric)."""
    spec = PipelineSpec.from_dict(spec_dict())
    assert spec.metric.resolved_direction == "maximize"
    assert spec.experiment_name == spec.registered_model_name == "churn"
    assert spec.split.seed == 42


def test_level_out_of_range() -> None:
    """A level outside 0..4 names the field, the bound and the value found."""
    message = _error(level=7)
    assert "p.yaml" in message
    assert "level: expected less than or equal to 4, found 7" in message


def test_estimator_path_that_does_not_import() -> None:
    """An estimator class that does not exist is caught at parse time without importing sklearn."""
    before = "sklearn" in sys.modules
    message = _error(estimator={"class": "sklearn.linear_model.LogisticRegresion"})
    assert "estimator.class" in message
    assert "'sklearn.linear_model.LogisticRegresion'" in message
    assert "has no attribute 'LogisticRegresion'" in message
    assert ("sklearn" in sys.modules) == before


def test_estimator_module_not_installed() -> None:
    """A module that is not installed is reported as such."""
    assert "module 'nosuchpkg' is not installed" in _error(estimator={"class": "nosuchpkg.Model"})


def test_unknown_metric() -> None:
    """An unknown metric lists the known ones and the value found."""
    message = _error(metric={"name": "auc"})
    assert "metric.name: expected one of" in message
    assert "found 'auc'" in message


def test_metric_of_wrong_task() -> None:
    """A regression metric on a classification task is refused with both named."""
    message = _error(metric={"name": "rmse"})
    assert "metric.name: expected one of" in message
    assert "found 'rmse' (a regression metric)" in message


def test_unknown_field_and_missing_field() -> None:
    """Typos are unknown fields; a missing target is reported as missing."""
    data = spec_dict(targte="churned")
    del data["target"]
    with pytest.raises(PipelineSpecError) as err:
        PipelineSpec.from_dict(data, origin="p.yaml")
    assert "targte: unknown field" in str(err.value)
    assert "target: required field is missing" in str(err.value)


def test_postgres_source_needs_table_or_query() -> None:
    """Both or neither of table/query is an error; a bad table name is an error."""
    assert "found both" in _error(source={"kind": "postgres", "table": "t", "query": "select 1"})
    assert "found neither" in _error(source={"kind": "postgres"})
    assert "expected a table name" in _error(source={"kind": "postgres", "table": "t; drop table x"})


def test_unknown_source_kind() -> None:
    """An unknown source kind lists the accepted ones."""
    message = _error(source={"kind": "mysql", "table": "t"})
    assert "source:" in message
    assert "'postgres', 'files'" in message


def test_file_format_inferred_or_required() -> None:
    """The format comes from the suffix, else must be given."""
    assert PipelineSpec.from_dict(spec_dict(source={"kind": "files", "uri": "s3://b/x.parquet"})).source.kind == "files"
    assert "set 'format'" in _error(source={"kind": "files", "uri": "s3://b/data"})


def test_features_must_not_contain_target() -> None:
    """The target cannot also be a feature."""
    assert "features: must not contain ['churned']" in _error(features=["churned", "plan"])


def test_yaml_relative_uri_resolves_against_spec_folder(tmp_path: Path) -> None:
    """A relative file URI in YAML points next to the YAML file."""
    data = spec_dict(source={"kind": "files", "uri": "data/x.csv"})
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    spec = PipelineSpec.from_yaml(tmp_path / "p.yaml")
    assert spec.source.uri == f"file://{tmp_path / 'data' / 'x.csv'}"


def test_invalid_yaml_and_duplicate_names(tmp_path: Path) -> None:
    """Broken YAML names the file; two specs with one name are refused."""
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(PipelineSpecError, match="bad.yaml: not valid YAML"):
        PipelineSpec.from_yaml(tmp_path / "bad.yaml")
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(spec_dict()))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(spec_dict()))
    with pytest.raises(PipelineSpecError, match="name: 'churn' is already used"):
        load_specs([tmp_path / "a.yaml", tmp_path / "b.yaml"])


def test_example_specs_are_valid() -> None:
    """Every bundled example spec validates."""
    specs = load_specs(sorted((REPO / "dags" / "pipelines").glob("*.yaml")))
    assert {s.level for s in specs} >= {0, 1, 2}
    assert {s.source.kind for s in specs} == {"files", "postgres"}


def test_drift_overrides_validate_and_default() -> None:
    """monitoring.drift: Evidently's share by default; per-column overrides become check_drift overrides."""
    spec = PipelineSpec.from_dict(spec_dict())
    assert spec.monitoring.drift.share == 0.5
    assert spec.monitoring.drift.overrides() == {}
    assert spec.monitoring.drift.prediction.publish is True
    spec = PipelineSpec.from_dict(
        spec_dict(
            monitoring={
                "drift": {
                    "share": 0.3,
                    "columns": {"plan": {"method": "psi"}, "tenure_months": {"method": "ks", "threshold": 0.01}},
                    "prediction": {"method": "jensenshannon", "publish": False},
                }
            }
        )
    )
    assert spec.monitoring.drift.share == 0.3
    assert spec.monitoring.drift.overrides() == {"plan": ("psi", None), "tenure_months": ("ks", 0.01)}
    assert spec.monitoring.drift.prediction.as_override() == ("jensenshannon", None)


def test_drift_override_with_unknown_method_names_the_column_and_the_methods() -> None:
    message = _error(monitoring={"drift": {"columns": {"plan": {"method": "anderson"}}}})
    assert "monitoring.drift.columns.plan.method" in message
    assert "'anderson'" in message
    for method in ("chisquare", "jensenshannon", "kl_div", "ks", "psi", "wasserstein", "z"):
        assert method in message


def test_drift_override_on_a_non_feature_names_it() -> None:
    message = _error(monitoring={"drift": {"columns": {"zip_code": {"threshold": 0.2}}}})
    assert "monitoring.drift.columns" in message
    assert "['zip_code'] (not a feature)" in message
    message = _error(features=None, monitoring={"drift": {"columns": {"churned": {"method": "psi"}}}})
    assert "['churned'] (not a feature)" in message


def test_drift_share_bounds() -> None:
    assert "monitoring.drift.share" in _error(monitoring={"drift": {"share": 0}})
    assert "monitoring.drift.share" in _error(monitoring={"drift": {"share": 1.5}})


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"schedule": "every day"}, "schedule"),
        ({"schedule": "0 25 * * *"}, "schedule"),
        ({"schedule": "@every_day"}, "schedule"),
        ({"schedule": "* * * * * *"}, "schedule"),
        ({"watch": {"schedule": "every 30 minutes"}}, "watch.schedule"),
        ({"monitoring": {"schedule": "hourly"}}, "monitoring.schedule"),
        ({"promotion": {"ab": {"schedule": "*/61 * * *"}}}, "promotion.ab.schedule"),
    ],
)
def test_every_schedule_is_checked_at_parse(overrides: dict[str, object], field: str) -> None:
    """A schedule Airflow cannot fire names the file, the field, what is expected and what was found."""
    message = _error(**overrides)
    line = next(line for line in message.splitlines() if line.strip().startswith(f"{field}:"))
    assert "p.yaml" in message
    assert "expected a cron expression of five fields" in line
    assert "@daily" in line
    found = overrides[field.split(".")[0]]
    while isinstance(found, dict):
        found = next(iter(found.values()))
    assert f"found {found!r}" in line


def test_schedules_that_fire_or_null_are_accepted() -> None:
    """Cron expressions, Airflow's presets and null (unscheduled) all validate."""
    spec = PipelineSpec.from_dict(
        spec_dict(
            schedule="0 3 * * 1-5",
            watch={"schedule": None},
            monitoring={"schedule": "@daily"},
            promotion={"ab": {"schedule": "*/15 * * * *"}},
        )
    )
    assert (spec.schedule, spec.watch.schedule, spec.monitoring.schedule) == ("0 3 * * 1-5", None, "@daily")
    assert "no date matches" in _error(schedule="0 0 31 2 *")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("os.system", "module 'os' is not an allowed estimator module (allowed: sklearn; add a module prefix"),
        ("builtins.eval", "module 'builtins' is not an allowed estimator module"),
        ("os.path.join", "module 'os.path' is not an allowed estimator module"),
        ("sklearn.utils.estimator_html_repr", "is a function; factory functions are allowed only under"),
    ],
)
def test_estimator_outside_the_allow_list_fails_at_parse(path: str, reason: str) -> None:
    """The estimator field names the rule (allowed modules, classes) and the path found."""
    line = next(line for line in _error(estimator={"class": path}).splitlines() if "estimator.class" in line)
    assert f"estimator.class: expected an estimator class under an allowed module, found '{path}'" in line
    assert reason in line


def test_declared_modules_extend_the_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """``[mlops] allowed_estimator_modules`` (here through its environment variable) adds module prefixes."""
    path = "tests.unit.core.test_training.scaled_logistic"
    assert "not an allowed estimator module" in _error(estimator={"class": path})
    monkeypatch.setenv("AIRFLOW__MLOPS__ALLOWED_ESTIMATOR_MODULES", "mycompany, tests.unit.core")
    assert PipelineSpec.from_dict(spec_dict(estimator={"class": path})).estimator.class_path == path


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", b"\xff\xfe\x00n\x00a\x00m\x00e", b"name: \xe9t\xe9\n"],
)
def test_binary_spec_file_is_one_line_naming_the_file(tmp_path: Path, content: bytes) -> None:
    """Bytes that are not UTF-8 text give one line naming the file, not a raw UnicodeDecodeError."""
    path = tmp_path / "garbage.yaml"
    path.write_bytes(content)
    with pytest.raises(PipelineSpecError) as err:
        PipelineSpec.from_yaml(path)
    message = str(err.value)
    assert message.startswith(f"{path}: expected a UTF-8 text YAML file, found binary data")
    assert "\n" not in message


def test_unreadable_and_non_yaml_files_are_one_line(tmp_path: Path) -> None:
    """A folder in place of a file, or YAML that does not parse, is one line naming the file."""
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(PipelineSpecError, match=r"dir.yaml: cannot read the spec file: Is a directory$"):
        PipelineSpec.from_yaml(tmp_path / "dir.yaml")
    (tmp_path / "tabs.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(PipelineSpecError) as err:
        PipelineSpec.from_yaml(tmp_path / "tabs.yaml")
    assert str(err.value).startswith(f"{tmp_path / 'tabs.yaml'}: not valid YAML: ")
    assert "\n" not in str(err.value)


def test_monitoring_windows_and_detector_defaults() -> None:
    monitoring = PipelineSpec.from_dict(spec_dict()).monitoring
    assert (monitoring.max_window_hours, monitoring.label_delay_hours) == (168.0, 0.0)
    assert monitoring.change_detector.method == "page_hinkley"
    assert (monitoring.change_detector.delta, monitoring.change_detector.threshold) == (0.005, 50.0)


def test_max_window_shorter_than_window_names_both() -> None:
    message = _error(monitoring={"window_hours": 48, "max_window_hours": 24})
    assert "monitoring" in message
    assert "max_window_hours (24.0) is shorter than window_hours (48.0)" in message
    assert "monitoring.label_delay_hours" in _error(monitoring={"label_delay_hours": -1})
    assert "monitoring.change_detector.method" in _error(monitoring={"change_detector": {"method": "cusum"}})
