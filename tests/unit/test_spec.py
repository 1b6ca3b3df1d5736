"""PipelineSpec: valid specs load; every invalid field fails with path, expected and found."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from airflow_mlops.exceptions import PipelineSpecError
from airflow_mlops.spec import PipelineSpec, load_specs
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
