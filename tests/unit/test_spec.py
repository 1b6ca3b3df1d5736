"""PipelineSpec: valid specs load; every invalid field fails with path, expected and found."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from airflow_mlops.exceptions import PipelineSpecError
from airflow_mlops.spec import PipelineSpec
from airflow_mlops.spec_files import load_specs
from airflow_mlops.spec_sql import one_statement, several_statements
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
    assert (
        "has no attribute 'LogisticRegresion' (did you mean 'LogisticRegression' or 'LogisticRegressionCV'?)" in message
    )
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
    assert "source.kind: expected one of" in message
    assert "'postgres', 'files'" in message


def test_file_format_inferred_or_required() -> None:
    """The format comes from the suffix, else must be given."""
    assert PipelineSpec.from_dict(spec_dict(source={"kind": "files", "uri": "s3://b/x.parquet"})).source.kind == "files"
    assert "set 'format'" in _error(source={"kind": "files", "uri": "s3://b/data"})


def test_features_must_not_contain_target() -> None:
    """The target cannot also be a feature."""
    assert "features: must not contain ['churned']: the target and the timestamp column are not features" in _error(
        features=["churned", "plan"]
    )


def test_yaml_relative_uri_resolves_against_spec_folder(tmp_path: Path) -> None:
    """A relative file URI in YAML points next to the YAML file."""
    data = spec_dict(source={"kind": "files", "uri": "data/x.csv"})
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    spec = PipelineSpec.from_yaml(tmp_path / "p.yaml")
    assert spec.source.uri == f"file://{tmp_path / 'data' / 'x.csv'}"


def test_a_relative_storage_resolves_against_the_spec_folder_and_a_tilde_is_refused(tmp_path: Path) -> None:
    """``storage: relative/dir`` meant each process's own working directory; ``~/x.csv`` became <folder>/~/x.csv."""
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec_dict(storage="snapshots")))
    assert PipelineSpec.from_yaml(tmp_path / "p.yaml").storage == f"file://{tmp_path / 'snapshots'}"
    (tmp_path / "x.yaml").write_text(yaml.safe_dump(spec_dict(source={"kind": "files", "uri": "sftp3://h/x.csv"})))
    with pytest.raises(PipelineSpecError, match=r"source.uri: expected a path or a URI of a filesystem fsspec knows"):
        PipelineSpec.from_yaml(tmp_path / "x.yaml")  # a typo of the scheme failed only at run time
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(spec_dict(source={"kind": "files", "uri": "~/data.csv"})))
    with pytest.raises(PipelineSpecError, match=r"source.uri: expected a path or URI; '~' is not expanded"):
        PipelineSpec.from_yaml(tmp_path / "t.yaml")


def test_names_that_differ_only_in_case_are_one_name(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(spec_dict(name="churn")))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(spec_dict(name="Churn")))
    with pytest.raises(PipelineSpecError, match="name: 'Churn' differs only in case from a pipeline of"):
        load_specs([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(spec_dict(name="fraud", mlflow={"registered_model": "CHURN"})))
    with pytest.raises(PipelineSpecError, match="mlflow.registered_model: 'CHURN' differs only in case"):
        load_specs([tmp_path / "a.yaml", tmp_path / "b.yaml"])


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


def test_an_integer_too_long_to_read_names_its_line(tmp_path: Path) -> None:
    """It said "cannot load the spec (ValueError: Exceeds the limit ...; use sys.set_int_max_str_digits()"."""
    (tmp_path / "big.yaml").write_text("name: churn\nlevel: 1\nretries: " + "9" * 5000 + "\n")
    with pytest.raises(PipelineSpecError, match=r"expected a number, found an integer of 5000 digits line 3"):
        PipelineSpec.from_yaml(tmp_path / "big.yaml")


def test_unreadable_and_non_yaml_files_are_one_line(tmp_path: Path) -> None:
    """A folder in place of a file, or YAML that does not parse, is one line naming the file."""
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(PipelineSpecError, match=r"dir.yaml: expected a regular file, found a folder$"):
        PipelineSpec.from_yaml(tmp_path / "dir.yaml")
    os.mkfifo(tmp_path / "pipe.yaml")  # reading it would block the DAG parse until a writer came
    with pytest.raises(PipelineSpecError, match=r"pipe.yaml: expected a regular file, found a FIFO \(named pipe\)$"):
        PipelineSpec.from_yaml(tmp_path / "pipe.yaml")
    (tmp_path / "huge.yaml").write_text("name: churn\ndescription: " + "x" * (1 << 20) + "\n", encoding="utf-8")
    size = (tmp_path / "huge.yaml").stat().st_size  # just over: "found 1.0 MiB" read as within the limit
    with pytest.raises(PipelineSpecError, match=rf"huge.yaml: expected a spec file of at most 1 MiB \(1048576 bytes\), "
                       rf"found {size} bytes$"):  # fmt: skip
        PipelineSpec.from_yaml(tmp_path / "huge.yaml")
    (tmp_path / "tabs.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(PipelineSpecError) as err:
        PipelineSpec.from_yaml(tmp_path / "tabs.yaml")
    assert str(err.value).startswith(f"{tmp_path / 'tabs.yaml'}: not valid YAML: ")
    assert "\n" not in str(err.value)
    assert "<unicode string>" not in str(err.value)


def test_monitoring_windows_and_detector_defaults() -> None:
    monitoring = PipelineSpec.from_dict(spec_dict()).monitoring
    assert (monitoring.max_window_hours, monitoring.label_delay_hours) == (168.0, 0.0)
    assert monitoring.change_detector.method == "page_hinkley"
    assert (monitoring.change_detector.delta, monitoring.change_detector.threshold) == (0.005, 50.0)


def test_max_window_shorter_than_window_names_both() -> None:
    message = _error(monitoring={"window_hours": 48, "max_window_hours": 24})
    assert "monitoring" in message
    assert "monitoring: max_window_hours: expected at least window_hours (48), found 24\n" in message + "\n"
    assert "monitoring.label_delay_hours" in _error(monitoring={"label_delay_hours": -1})
    assert "monitoring.change_detector.method" in _error(monitoring={"change_detector": {"method": "cusum"}})


def _bomb(levels: int = 7) -> str:
    """Nine aliases of nine aliases of ...: a few hundred bytes that expand to 9**levels values."""
    names = [chr(ord("a") + i) for i in range(levels)]
    lines = [f"  {names[0]}: &{names[0]} [x, x, x, x, x, x, x, x, x]"]
    lines += [f"  {n}: &{n} [{', '.join([f'*{p}'] * 9)}]" for p, n in zip(names, names[1:], strict=False)]
    return "\n".join(["tags:", *lines, f"features: *{names[-1]}", ""])


def test_alias_bomb_is_refused_in_one_line_naming_the_file(tmp_path: Path) -> None:
    """A document whose aliases expand past MAX_VALUES is refused before validation walks or prints it."""
    path = tmp_path / "bomb.yaml"
    path.write_text(yaml.safe_dump(spec_dict(features=None)) + _bomb(), encoding="utf-8")
    assert path.stat().st_size < 1500
    with pytest.raises(PipelineSpecError) as err:
        PipelineSpec.from_yaml(path)
    message = str(err.value)
    assert message.startswith(f"{path}: expected at most 100,000 values (keys, scalars, lists and mappings, any YAML ")
    assert "\n" not in message
    assert len(message) < 300


def test_anchors_aliases_and_merge_keys_still_load(tmp_path: Path) -> None:
    """A few aliases, and a merge key overridden by a later key, are ordinary YAML and validate."""
    text = yaml.safe_dump(spec_dict(validation=None, schedule=None)).replace("validation: null\n", "")
    text = text.replace("schedule: null\n", "schedule: &cron 0 3 * * *\n")
    text += "monitoring: {schedule: *cron}\nvalidation: {<<: &v {min_rows: 100, max_null_rate: 0.2}, min_rows: 150}\n"
    (tmp_path / "p.yaml").write_text(text, encoding="utf-8")
    spec = PipelineSpec.from_yaml(tmp_path / "p.yaml")
    assert spec.monitoring.schedule == spec.schedule == "0 3 * * *"
    assert (spec.validation.min_rows, spec.validation.max_null_rate) == (150, 0.2)
    (tmp_path / "r.yaml").write_text(_bomb(3) + "tags: &t {a: *t}\n", encoding="utf-8")
    with pytest.raises(PipelineSpecError, match=r"r.yaml: expected plain values, found an alias inside its own anchor"):
        PipelineSpec.from_yaml(tmp_path / "r.yaml")


def test_found_values_are_cut_short() -> None:
    """A huge or deeply nested value (given as a dict, past the YAML check) prints as a short ``found`` each."""
    nested: object = ["x"] * 9
    for _ in range(6):
        nested = [nested] * 9
    with pytest.raises(PipelineSpecError) as err:
        PipelineSpec.from_dict(spec_dict(features=nested, targte="y" * 10_000), origin="p.yaml")
    lines = str(err.value).splitlines()
    assert lines[1].startswith("  features.0: expected a valid string, found [[[[...], [...]")
    assert any(line.startswith("  targte: unknown field (found 'yyyy") for line in lines)
    assert max(len(line) for line in lines) < 250
    assert len(str(err.value)) < 3000


def test_duplicate_keys_name_the_path_and_both_lines(tmp_path: Path) -> None:
    """A key given twice (last would win silently) is an error at any depth, naming the dotted path and both lines."""
    text = yaml.safe_dump(spec_dict(), sort_keys=False)
    lines = text.count("\n")
    text += "level: 4\nsource: {kind: files, uri: /a.csv, uri: /b.csv}\nmonitoring: {drift: {share: 0.3, share: 0.4}}\n"
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PipelineSpecError) as err:
        PipelineSpec.from_yaml(path)
    assert str(err.value).splitlines() == [
        f"{path}: invalid pipeline spec (4 error(s))",
        f"  level: given twice (lines 2 and {lines + 1})",
        f"  source: given twice (lines 4 and {lines + 2})",
        f"  source.uri: given twice (line {lines + 2})",
        f"  monitoring.drift.share: given twice (line {lines + 3})",
    ]


INF = float("inf")


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ({"monitoring": {"window_hours": INF, "max_window_hours": INF}}, "monitoring.window_hours", "a finite number"),
        ({"monitoring": {"max_window_hours": 1e9}}, "monitoring.max_window_hours", "less than or equal to 87600"),
        ({"monitoring": {"cooldown_hours": INF}}, "monitoring.cooldown_hours", "a finite number"),
        ({"monitoring": {"label_delay_hours": 1e6}}, "monitoring.label_delay_hours", "less than or equal to 87600"),
        ({"watch": {"poll_interval": INF}}, "watch.poll_interval", "a finite number"),
        ({"watch": {"timeout": INF}}, "watch.timeout", "a finite number"),
        ({"watch": {"timeout": 1e12}}, "watch.timeout", "less than or equal to 315360000"),
        ({"serving": {"ready_timeout": INF}}, "serving.ready_timeout", "a finite number"),
        ({"promotion": {"ab": {"max_duration_hours": INF}}}, "promotion.ab.max_duration_hours", "a finite number"),
        ({"promotion": {"min_improvement": INF}}, "promotion.min_improvement", "a finite number"),
        ({"promotion": {"guards": {"accuracy": INF}}}, "promotion.guards.accuracy", "a finite number"),
        ({"monitoring": {"change_detector": {"threshold": INF}}}, "monitoring.change_detector.threshold", "a finite"),
    ],
)
def test_infinite_or_absurd_numbers_are_refused(overrides: dict[str, object], field: str, expected: str) -> None:
    """inf and hours past ten years would overflow ``now - timedelta(...)`` at run time; they fail at parse."""
    line = next(line.strip() for line in _error(**overrides).splitlines() if line.strip().startswith(f"{field}:"))
    assert line.startswith(f"{field}: expected {expected}")
    assert "found inf" in line or "found 1" in line


def test_exponent_numbers_in_yaml_are_numbers(tmp_path: Path) -> None:
    """``5e-3`` and ``1e9`` are numbers (YAML 1.2, JSON), not the strings PyYAML's YAML 1.1 makes of them."""
    base = yaml.safe_dump(spec_dict())
    numbers = "promotion: {min_improvement: 5e-3}\nmonitoring: {max_accuracy_drop: 1.0E-2}\n"
    (tmp_path / "ok.yaml").write_text(base + numbers)
    spec = PipelineSpec.from_yaml(tmp_path / "ok.yaml")
    assert (spec.promotion.min_improvement, spec.monitoring.max_accuracy_drop) == (0.005, 0.01)
    (tmp_path / "far.yaml").write_text(base + "monitoring: {max_window_hours: 1e9}\n")
    with pytest.raises(PipelineSpecError, match=r"monitoring.max_window_hours: expected less than or equal to 87600"):
        PipelineSpec.from_yaml(tmp_path / "far.yaml")
    (tmp_path / "quoted.yaml").write_text(base + "promotion: {min_improvement: '5e-3'}\n")
    with pytest.raises(PipelineSpecError, match=r"promotion.min_improvement: expected a valid number, found '5e-3'"):
        PipelineSpec.from_yaml(tmp_path / "quoted.yaml")


def test_lists_may_be_tuples_from_python_code() -> None:
    """Operators take a spec dict; Python code building it may write a tuple where YAML has a list."""
    spec = PipelineSpec.from_dict(spec_dict(features=("plan", "region"), validation={"required_columns": ("plan",)}))
    assert (spec.features, spec.validation.required_columns) == (["plan", "region"], ["plan"])
    assert "features.0: expected a valid string, found 1" in _error(features=(1, "plan"))


def test_ten_years_of_hours_is_accepted() -> None:
    spec = PipelineSpec.from_dict(spec_dict(monitoring={"window_hours": 87_600, "max_window_hours": 87_600}))
    assert spec.monitoring.max_window_hours == 87_600.0


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ({"level": True}, "level", "a valid integer, found True"),
        ({"validation": {"min_rows": True}}, "validation.min_rows", "a valid integer, found True"),
        ({"split": {"seed": True}}, "split.seed", "a valid integer, found True"),
        ({"retries": False}, "retries", "a valid integer, found False"),
        ({"split": {"test_size": True}}, "split.test_size", "a valid number, found True"),
        ({"watch": {"deferrable": 1}}, "watch.deferrable", "a valid boolean, found 1"),
        ({"level": 2.0}, "level", "a valid integer, found 2.0"),
    ],
)
def test_booleans_are_not_numbers(overrides: dict[str, object], field: str, expected: str) -> None:
    """``true`` is not 1: a boolean where a number is expected (or a number for a boolean) is refused."""
    assert f"{field}: expected {expected}" in _error(**overrides)


def test_yaml_ints_fill_int_and_float_fields(tmp_path: Path) -> None:
    """Integers stay integers, and a float field takes a YAML integer (``window_hours: 48``)."""
    text = yaml.safe_dump(spec_dict(level=4, monitoring={"window_hours": 48, "cooldown_hours": 0}, split={"seed": 7}))
    (tmp_path / "p.yaml").write_text(text + "promotion: {min_improvement: 0, ab: {max_duration_hours: 24}}\n")
    spec = PipelineSpec.from_yaml(tmp_path / "p.yaml")
    assert (spec.level, spec.split.seed, spec.monitoring.window_hours) == (4, 7, 48.0)
    assert (spec.promotion.min_improvement, spec.promotion.ab.max_duration_hours) == (0.0, 24.0)
    assert isinstance(spec.monitoring.window_hours, float)


def test_features_must_name_each_column_once() -> None:
    """A repeated feature reached training as a two-column frame (``'DataFrame' object has no attribute 'dtype'``)."""
    message = _error(features=["tenure_months", "tenure_months", "plan", "plan", "region"])
    assert "features: expected each column once, found ['tenure_months', 'plan'] more than once" in message


def test_guards_must_fit_the_task() -> None:
    """A guard of the other task kind failed only at the Level 3 gate; it fails at parse, naming the guards."""
    message = _error(promotion={"guards": {"rmse": 0.1, "accuracy": 0.02, "mae": 1.0}})
    assert "promotion.guards: expected metrics from ['accuracy', " in message
    assert "for task 'classification', found ['rmse', 'mae'] (regression metrics)" in message
    regression = {
        "task": "regression",
        "metric": {"name": "rmse"},
        "estimator": {"class": "sklearn.linear_model.Ridge"},
    }
    assert "found ['f1'] (classification metrics)" in _error(**regression, promotion={"guards": {"f1": 0.1}})
    spec = PipelineSpec.from_dict(spec_dict(**regression, promotion={"guards": {"mae": 0.5, "r2": 0.01}}))
    assert spec.promotion.guards == {"mae": 0.5, "r2": 0.01}


@pytest.mark.parametrize(
    ("query", "found"), [("", "an empty string"), ("   ", "only whitespace"), ("\n\t", "only whitespace")]
)
def test_blank_query_is_refused(query: str, found: str) -> None:
    """An empty query names the field and what was found."""
    assert f"source.query: expected a SQL query, found {found}" in _error(source={"kind": "postgres", "query": query})


@pytest.mark.parametrize("query", [";", " ;; ", "-- only a comment", "/* x */", "/* a */ ; -- b"])
def test_a_query_of_only_comments_is_refused(query: str) -> None:
    """Extraction would send an empty statement: the spec says so instead."""
    error = _error(source={"kind": "postgres", "query": query})
    assert "source.query: expected a SQL query, found only comments and ';'" in error


def test_placeholders_after_the_statement_are_not_parameters() -> None:
    """A ``%(name)s`` in a comment after the ``;`` is dropped with it, so it needs no parameter."""
    from airflow_mlops.core.extract import missing_parameters
    from airflow_mlops.spec import PostgresSource

    query = "select * from t where a = %(x)s; -- also %(y)s"
    source = PipelineSpec.from_dict(
        spec_dict(source={"kind": "postgres", "query": query, "parameters": {"x": 1}})
    ).source
    assert isinstance(source, PostgresSource)
    assert missing_parameters(source) == []


@pytest.mark.parametrize(
    ("query", "several"),
    [
        ("select string_agg(plan, ';') as plans, 1 as churned from t", False),
        ("select ';' as x", False),
        ("select 'it''s; fine' as x", False),
        ("select E'it\\'s; fine' as x", False),
        ('select 1 as "a;b", 2 as "say ""hi"";"', False),
        ("select $$a;b$$ as x, $fn$ c;$$ d $fn$ as y", False),
        ("select $é$ a;b $é$ as x, $_1$;$_1$ as y", False),
        ("select é$1; select 2", True),
        ("select 1 -- a; comment\nfrom t", False),
        ("select 1 /* a /* nested; */ still; */ from t", False),
        ("select 1;", False),
        ("select 1 ;; \n", False),
        ("select 1; -- the churn query\n", False),
        ("select 1; /* a; b */ ; -- end", False),
        ("select 1; -- note\nselect 2", True),
        ("select 1 -- note\r; delete from t", True),
        ("select 1 -- note\r\n; delete from t", True),
        ("select 1; /* x */ select 2", True),
        ("select 1; select 2", True),
        ("select 1 from t where a = 'x'; delete from t", True),
        ("select 1 /* x */; select 2", True),
        ("select $1::text; select 2", True),
        ("select 'it\\'; select 2 --'", True),
    ],
)
def test_single_statement_check_reads_quotes_and_comments(query: str, several: bool) -> None:
    """A ';' in a string, a quoted identifier, a dollar-quoted string or a comment does not end the statement."""
    assert several_statements(query) is several


@pytest.mark.parametrize(
    ("query", "statement"),
    [
        ("select 1", "select 1"),
        ("  select 1 ;; \n", "select 1"),
        ("select 1; -- the churn query\n", "select 1"),
        ("select 1 -- no semicolon", "select 1 -- no semicolon"),
        ("select ';' as x /* ; */;", "select ';' as x /* ; */"),
        ("select $$a;b$$ as x; /* end */", "select $$a;b$$ as x"),
    ],
)
def test_one_statement_drops_the_trailing_semicolon_and_what_follows_it(query: str, statement: str) -> None:
    """Extraction wraps this text, so nothing after the statement's own ``;`` may remain."""
    assert one_statement(query) == statement


def test_query_with_a_quoted_semicolon_validates() -> None:
    query = "select string_agg(plan, ';') as plans, 1 as churned from t"
    assert (
        PipelineSpec.from_dict(spec_dict(source={"kind": "postgres", "query": query}))
        .source.describe()
        .endswith(repr(query))
    )
    message = _error(source={"kind": "postgres", "query": "select 1; drop table t"})
    assert "source.query: expected a single SQL statement, found several" in message


@pytest.mark.parametrize("conn_id", ["postgres default", "pg;drop", "mlflow\tdefault", "a,b"])
def test_a_connection_id_airflow_would_refuse_is_refused_here(conn_id: str) -> None:
    """``conn_id: postgres default`` was accepted: no such connection can exist, and the task failed looking it up."""
    with pytest.raises(PipelineSpecError, match=r"mlflow.conn_id: expected an Airflow connection id"):
        PipelineSpec.from_dict(spec_dict(mlflow={"conn_id": conn_id}))


def test_a_watch_on_a_postgres_source_without_a_timestamp_column_is_a_note() -> None:
    from airflow_mlops.spec_checks import unused_sections

    spec = PipelineSpec.from_dict(
        spec_dict(source={"kind": "postgres", "table": "public.c"}, watch={"schedule": "@hourly"})
    )
    assert unused_sections(spec) == [
        "watch: has no effect: a Postgres source is watched for rows newer than source.timestamp_column, which is "
        "not set, so no <name>_watch DAG is built"
    ]
