"""The model server a user would write from the FastAPI and MLflow tutorials, for ``bench/serving.py``.

A pydantic body of 30 named floats, a one-row DataFrame, the champion's ``predict_proba``, and a
small JSON answer; the model is loaded once with ``mlflow.sklearn.load_model``. It validates the
types (pydantic) but neither routes nor logs. Same request bodies as ours (``{"features": {...},
"key": ...}``) on the same uvicorn settings.

    MLFLOW_TRACKING_URI=sqlite:///... .venv/bin/python bench/tutorial_app.py --model NAME --port 8098
"""

from __future__ import annotations

import argparse
from typing import Any

import mlflow.sklearn
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel, create_model

from floor_app import uvicorn_options  # bench/ is on sys.path when this file is run

N_FEATURES = 30
Features = create_model("Features", **{f"f{i:02d}": (float, ...) for i in range(N_FEATURES)})


class PredictRequest(BaseModel):
    features: Features
    key: str | None = None


def build(model_name: str) -> FastAPI:
    model = mlflow.sklearn.load_model(f"models:/{model_name}@champion")
    app = FastAPI()

    @app.post("/predict")
    def predict(request: PredictRequest) -> dict[str, Any]:
        frame = pd.DataFrame([request.features.model_dump()])
        probability = float(model.predict_proba(frame)[0, 1])
        return {"prediction": int(probability >= 0.5), "probability": probability}

    @app.get("/ready")
    def ready() -> dict[str, bool]:
        return {"ready": True}

    return app


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(build(args.model), **uvicorn_options(args.port))
