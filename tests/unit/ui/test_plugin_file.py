"""``plugins/mlops_plugin.py`` copied into any plugins folder gives Airflow the one ``mlops`` plugin."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_a_copy_of_the_plugin_file_in_another_plugins_folder_registers_the_pages(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    shutil.copy(REPO / "plugins" / "mlops_plugin.py", folder / "mlops_plugin.py")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run(
        [str(airflow), "plugins", "--output", "json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    (plugin,) = json.loads(result.stdout[result.stdout.index("[") :])
    assert plugin["name"] == "mlops"
    assert plugin["source"] == "$PLUGINS_FOLDER/mlops_plugin.py"
    assert [app["url_prefix"] for app in plugin["fastapi_apps"]] == ["/mlops"]
    assert {view["destination"] for view in plugin["external_views"]} == {"nav", "dag_run"}
