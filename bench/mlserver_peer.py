"""Seldon's MLServer serving the benchmark's champion, in a throw-away environment of its own.

MLServer (the runtime of ``mlflow models serve --enable-mlserver``, Seldon Core and KServe) pins
versions that clash with ours, so :func:`prepare` makes a venv with ``uv`` under the benchmark's
work folder (its package cache there too), installs ``mlserver``, ``mlserver-sklearn`` and our
scikit-learn version, and writes the model (``joblib``, which ``mlserver-sklearn`` loads) with its
settings. Requests use the Open Inference Protocol v2 with the pandas codec: one FP64 input per
column, so the pipeline gets the same one-row DataFrame as ours.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any


def prepare(root: Path, model: Any, name: str, port: int, grpc_port: int, venv: Path | None = None) -> list[str]:
    """Install MLServer (unless ``venv`` already has it), write the model folder; the start command."""
    import joblib
    import sklearn

    if venv is None:
        uv = shutil.which("uv")
        if uv is None:
            raise RuntimeError("uv is not on PATH: cannot make MLServer's environment (or pass --mlserver-venv)")
        venv = root / "mlserver-venv"
        env = {**os.environ, "UV_CACHE_DIR": str(root / "uv-cache"), "VIRTUAL_ENV": str(venv)}
        env.pop("UV_PROJECT_ENVIRONMENT", None)
        subprocess.run([uv, "venv", "-q", "-p", "3.11", str(venv)], check=True, env=env)
        # uvloop 0.22 dropped the implicit event loop MLServer 1.7's inference workers ask for
        # (RuntimeError: There is no current event loop): the workers die and no model loads
        packages = ["mlserver", "mlserver-sklearn", f"scikit-learn=={sklearn.__version__}", "uvloop<0.22"]
        subprocess.run([uv, "pip", "install", "-q", *packages], check=True, env=env)
    folder = root / "mlserver-model"
    folder.mkdir()
    joblib.dump(model, folder / "model.joblib")
    (folder / "settings.json").write_text(
        json.dumps({"http_port": port, "grpc_port": grpc_port, "metrics_endpoint": None, "host": "127.0.0.1"})
    )
    (folder / "model-settings.json").write_text(
        json.dumps(
            {
                "name": name,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "1"},
            }
        )
    )
    return [str(venv / "bin" / "mlserver"), "start", str(folder)]


def version(command: list[str]) -> str:
    """The installed MLServer's version."""
    python = Path(command[0]).parent / "python"
    out = subprocess.run([str(python), "-c", "import mlserver; print(mlserver.__version__)"], capture_output=True)
    return out.stdout.decode().strip() or "unknown"


def v2_body(columns: list[str], values: list[float]) -> dict[str, Any]:
    """One row as an Open Inference Protocol v2 request: one named FP64 tensor of shape [1] per column."""
    return {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [1], "data": [v]} for c, v in zip(columns, values, strict=True)
        ],
    }
