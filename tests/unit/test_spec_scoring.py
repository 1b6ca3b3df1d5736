"""The spec's ``scoring`` section: defaults, destinations, level, schedule and relative URIs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import yaml

from airflow_mlops.exceptions import PipelineSpecError
from airflow_mlops.spec import PipelineSpec
from tests.support.specs import spec_dict

if TYPE_CHECKING:
    from pathlib import Path


def _error(**overrides: object) -> str:
    with pytest.raises(PipelineSpecError) as err:
        PipelineSpec.from_dict(spec_dict(**overrides), origin="p.yaml")
    return str(err.value)


def test_scoring_defaults_to_the_pipeline_source() -> None:
    """Only a destination is required; the source, schedule and key stay unset."""
    spec = PipelineSpec.from_dict(spec_dict(scoring={"table": "public.scores"}))
    assert spec.scoring is not None
    assert spec.scoring.source is None
    assert spec.scoring.schedule is None
    assert (spec.scoring.chunk_rows, spec.scoring.max_bad_fraction) == (50_000, 0.0)
    assert PipelineSpec.from_dict(spec_dict()).scoring is None


@pytest.mark.parametrize(
    ("scoring", "expected"),
    [
        ({}, "scoring: expected exactly one of 'table' (Postgres) or 'uri' (parquet folder), found neither"),
        ({"table": "s", "uri": "/out"}, "found both ('s', '/out')"),
        ({"table": "bad name"}, "scoring: table: expected a table name like 'schema.table', found 'bad name'"),
        ({"uri": "/out", "chunk_rows": 0}, "scoring.chunk_rows: expected greater than or equal to 1, found 0"),
        ({"uri": "/out", "max_bad_fraction": 2}, "scoring.max_bad_fraction: expected less than or equal to 1"),
        ({"uri": "/out", "schedule": "every day"}, "scoring.schedule:"),
        ({"uri": "/out", "sink": "x"}, "scoring.sink: unknown field (found 'x')"),
        (
            {"uri": "/out", "source": {"kind": "postgres"}},
            "scoring.source: expected exactly one of 'table' or 'query', found neither",
        ),
    ],
)
def test_bad_scoring_fields_name_the_field(scoring: dict[str, object], expected: str) -> None:
    message = _error(scoring=scoring)
    assert message.startswith("p.yaml: invalid pipeline spec")
    assert expected in message


def test_scoring_needs_level_2() -> None:
    assert "scoring: expected level 2 or higher for batch scoring, found level 1" in _error(
        level=1, scoring={"uri": "/out"}
    )


def test_relative_scoring_uris_resolve_against_the_spec_folder(tmp_path: Path) -> None:
    data = spec_dict(scoring={"uri": "scores", "source": {"kind": "files", "uri": "data/new.parquet"}})
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    spec = PipelineSpec.from_yaml(tmp_path / "p.yaml")
    assert spec.scoring is not None
    assert spec.scoring.uri == f"file://{tmp_path / 'scores'}"
    assert spec.scoring.source is not None
    assert spec.scoring.source.describe() == f"file://{tmp_path / 'data' / 'new.parquet'}"
