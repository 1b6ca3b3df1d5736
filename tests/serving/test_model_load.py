"""Loading a version in the model server: no warning flood from skops' module scan."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from tests.support.paths import REPO

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.support.serving import Store

LOAD = """
import sys, warnings
import airflow.utils.timezone  # Airflow's shim modules, imported first, as in a server beside Airflow
from airflow_mlops.serving.config import ServingConfig
from airflow_mlops.serving.models import ModelRegistry

config = ServingConfig(model_name=sys.argv[2], tracking_uri=sys.argv[1], postgres_dsn="", admin_token="")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    loaded = ModelRegistry(config).load("1")
print(loaded.version, sum("airflow" in str(w.message) for w in caught))
"""


def test_loading_a_model_beside_airflow_draws_no_deprecation_warnings(
    serving_store: Store, register: Callable[..., str]
) -> None:
    """skops reads a name from every module; each of Airflow's deprecated-import shims warned (1,160 log lines)."""
    name = register()
    done = subprocess.run(
        [sys.executable, "-c", LOAD, serving_store.tracking_uri, name],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["1", "0"], done.stdout[-500:]
