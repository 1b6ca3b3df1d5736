"""A bad spec on a real dag-processor: the other pipelines stay active, the spec check file names it.

Airflow marks every DAG of a file with an import error stale (its runs stop, the UI hides it), which
a ``DagBag`` in a test does not show: only the dag-processor's write to the metadata database does.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest

from demo.cluster import AirflowCluster, wait_until
from tests.support.paths import REPO

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.scheduler, pytest.mark.integration]


def test_an_invalid_spec_leaves_the_other_pipelines_active(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    pipelines = dags / "pipelines"
    pipelines.mkdir(parents=True)
    for name in ("mlops_pipelines.py", "mlops_pipeline_specs.py"):
        shutil.copy(REPO / "dags" / name, dags / name)
    shutil.copytree(REPO / "dags" / "pipelines" / "data", pipelines / "data")
    good = (REPO / "dags" / "pipelines" / "churn_files.yaml").read_text(encoding="utf-8")
    (pipelines / "churn_files.yaml").write_text(good, encoding="utf-8")
    (pipelines / "typo.yaml").write_text(
        good.replace("name: churn_files", "name: typo").replace("level: 2", "level: 7")
    )
    cluster = AirflowCluster(home=tmp_path / "airflow", dags_folder=dags)  # SQLite: one process writes
    cluster.migrate()
    cluster.start(["dag-processor"])
    try:

        def parsed() -> bool:
            return len(cluster.query("SELECT dag_id FROM dag")) == 3 and bool(
                cluster.query("SELECT 1 FROM import_error")
            )

        wait_until(parsed, timeout=240, interval=2, what="both DAG files parsed", check=cluster.check_alive)
        dags_by_state = cluster.query("SELECT dag_id, is_stale, has_import_errors FROM dag ORDER BY dag_id")
        ((filename, stacktrace),) = cluster.query("SELECT filename, stacktrace FROM import_error")
    finally:
        cluster.stop()
    assert [tuple(row) for row in dags_by_state] == [
        ("churn_files_promote", 0, 0),
        ("churn_files_train", 0, 0),
        ("churn_files_watch", 0, 0),
    ]
    assert filename == "mlops_pipeline_specs.py"
    assert "1 invalid pipeline spec file(s); the other pipelines loaded" in stacktrace
    assert f"{pipelines / 'typo.yaml'}: invalid pipeline spec" in stacktrace
    assert "level: expected less than or equal to 4, found 7" in stacktrace
