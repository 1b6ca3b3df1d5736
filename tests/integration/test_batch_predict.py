"""BatchPredictOperator on real Postgres, a real parquet file and a real MLflow (SQLite) champion."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow.sklearn
import pandas as pd
import psycopg2
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.cli import main
from airflow_mlops.core.batch_scoring import BatchScoringError
from airflow_mlops.operators.batch import BatchPredictOperator
from airflow_mlops.operators.dataset import ExtractDatasetOperator
from airflow_mlops.operators.promotion import PromoteModelOperator
from airflow_mlops.operators.registry import RegisterModelOperator
from airflow_mlops.operators.training import TrainModelOperator
from airflow_mlops.spec import PipelineSpec
from tests.support.context import task_context
from tests.support.postgres import PG_DSN, load_frame
from tests.support.specs import STRONG, spec_dict

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("storage")]


@pytest.fixture
def champion(mlflow_conn: str, customers_csv: Path) -> dict[str, Any]:
    """Version 1 of ``churn`` trained on the customers CSV and made champion."""
    spec = PipelineSpec.from_dict(spec_dict(source={"kind": "files", "uri": f"file://{customers_csv}"}))
    context = task_context(run_id="scheduled__train")
    dataset = ExtractDatasetOperator(task_id="extract", spec=spec).execute(context)
    model = TrainModelOperator(task_id="train", spec=spec, dataset=dataset).execute(context)
    RegisterModelOperator(task_id="register", spec=spec, model=model).execute(context)
    PromoteModelOperator(task_id="promote", model_name="churn", version="1").execute(task_context())
    return model


@pytest.fixture
def tables(pg_conn: Any, pg_table: str) -> Iterator[tuple[str, str]]:
    """A source table name and a destination table name, both dropped afterwards."""
    destination = f"{pg_table}_scores"
    yield pg_table, destination
    with pg_conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {destination}")


def _rows(table: str) -> pd.DataFrame:
    with psycopg2.connect(PG_DSN) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {table} ORDER BY prediction_id")
        names = [d.name for d in cur.description]
        return pd.DataFrame(cur.fetchall(), columns=names)


def _score(**kwargs: Any) -> dict[str, Any]:
    operator = BatchPredictOperator(task_id="score", model_name="churn", chunk_rows=400, **kwargs)
    result: dict[str, Any] = operator.execute(task_context(run_id="scheduled__score"))
    return result


def test_scores_a_postgres_table_once_per_digest_and_version(
    champion: dict[str, Any],
    customers_frame: pd.DataFrame,
    pg_conn: Any,
    tables: tuple[str, str],
    mlflow_conn: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every row is scored with version 1; a re-run replaces its rows; trace walks a row to its run."""
    source, destination = tables
    load_frame(pg_conn, source, customers_frame.drop(columns=["churned"]))
    kwargs = {
        "source": {"kind": "postgres", "table": source},
        "destination_table": destination,
        "key_column": "customer_id",
    }
    first = _score(**kwargs)
    assert first["written"] == len(customers_frame) == first["rows"]
    assert first["bad_rows"] == {"count": 0, "sample": []}
    assert first["fast_path"].startswith("numpy fast path")
    again = _score(**kwargs)
    assert again["dataset_digest"] == first["dataset_digest"]
    assert again["replaced"] == len(customers_frame)
    rows = _rows(destination)
    assert len(rows) == len(customers_frame)
    assert rows["prediction_id"].is_unique
    assert rows["row_key"].is_unique
    assert set(rows["model_version"]) == {"1"}
    assert set(rows["run_id"]) == {champion["run_id"]}
    assert set(rows["dataset_digest"]) == {first["dataset_digest"]}
    assert set(rows["prediction"]) <= {"0", "1"}
    assert rows["score"].between(0, 1).all()

    prediction_id = rows["prediction_id"].iloc[0]
    code = main(["trace", prediction_id, "--dsn", PG_DSN, "--tracking-uri", mlflow_conn, "--batch-table", destination])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f'"input_digest": "{first["dataset_digest"]}"' in out
    assert f'"run_id": "{champion["run_id"]}"' in out
    assert '"dag_id": "churn_train"' in out


def test_bad_rows_are_reported_and_never_scored(
    champion: dict[str, Any], customers_frame: pd.DataFrame, pg_conn: Any, tables: tuple[str, str]
) -> None:
    """By default one bad row fails the run with nothing written; with a tolerance the good rows are scored."""
    source, destination = tables
    frame = customers_frame.drop(columns=["churned"]).astype({"tenure_months": object})
    frame.loc[3, "tenure_months"] = "a while"
    frame.loc[10, "plan"] = None
    load_frame(pg_conn, source, frame)
    kwargs = {"source": {"kind": "postgres", "table": source}, "destination_table": destination}
    with pytest.raises(AirflowFailException) as failed:  # the same rows fail the same way: no retry
        _score(**kwargs)
    assert isinstance(failed.value.__cause__, BatchScoringError)
    message = str(failed.value)
    assert "2 bad row(s), e.g. row 3: tenure_months: expected a number (double), found 'a while'" in message
    assert "row 10: plan: required value is null" in message
    assert "nothing was written" in message
    with psycopg2.connect(PG_DSN) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (destination,))
        assert cur.fetchone() == (None,)  # the transaction that would have created it was rolled back

    result = _score(max_bad_fraction=0.01, **kwargs)
    assert result["bad_rows"]["count"] == 2
    assert result["written"] == len(frame) - 2
    assert len(_rows(destination)) == len(frame) - 2


def test_an_empty_table_of_other_columns_fails_naming_them(
    champion: dict[str, Any], pg_conn: Any, tables: tuple[str, str]
) -> None:
    """No rows meant no frame, so the required columns went unchecked and the run succeeded, scoring 0 of 0."""
    source, destination = tables
    load_frame(pg_conn, source, pd.DataFrame({"foo": pd.Series([], dtype="int64"), "bar": pd.Series([], dtype=object)}))
    with pytest.raises(
        AirflowFailException, match=r"lacks the model's required column\(s\) \[.*\]; found \['foo', 'bar'\]"
    ):
        _score(source={"kind": "postgres", "table": source}, destination_table=destination)


def test_scores_a_parquet_file_into_one_parquet_file(
    champion: dict[str, Any], customers_frame: pd.DataFrame, tmp_path: Path, mlflow_conn: str
) -> None:
    """A parquet source is scored into ``<folder>/churn-v1-<digest>.parquet``; a re-run overwrites it."""
    source = tmp_path / "to_score.parquet"
    customers_frame.drop(columns=["churned"]).to_parquet(source, index=False)
    out = tmp_path / "scores"
    kwargs = {"source": {"kind": "files", "uri": f"file://{source}"}, "destination_uri": f"file://{out}"}
    first = _score(**kwargs)
    _score(**kwargs)
    mlflow.set_tracking_uri(mlflow_conn)
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"churn-v1-{first['dataset_digest'][:16]}.parquet"]
    written = pd.read_parquet(files[0])
    assert len(written) == len(customers_frame)
    assert written["prediction_id"].is_unique
    assert set(written["run_id"]) == {champion["run_id"]}
    assert set(written["dataset_digest"]) == {first["dataset_digest"]}
    assert set(written["model_version"]) == {"1"}
    model = mlflow.sklearn.load_model("models:/churn@champion")
    features = customers_frame[STRONG]
    expected = model.predict_proba(features)[:, 1]
    assert written.sort_values("ordinal")["score"].to_numpy() == pytest.approx(expected, rel=1e-9)
