"""The real clients of other servers against the real ``airflow-mlops serve`` process, unchanged.

``tritonclient[http]`` (Triton's own client of the Open Inference Protocol v2, binary tensors by
default) and MLflow's ``ScoringServerClient`` with the payloads MLflow itself builds
(``convert_input_example_to_serving_input``, ``dump_input_data``) get the answers ``/predict``
gives, and their bad requests fail with the protocol's error naming what is wrong.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.server_process import Server
from tests.support.serving import FEATURES, complete_rows

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.support.serving import Store

pytestmark = pytest.mark.integration


@pytest.fixture
def served(
    serving_store: Store, register: Callable[..., str], tables: tuple[str, str], tmp_path: Path
) -> Iterator[tuple[Server, str]]:
    name = register(champion=0, challenger=1)
    server = Server(serving_store.tracking_uri, tables, tmp_path, model=name)
    try:
        server.wait_for({"champion": "1", "challenger": "2"})
        yield server, name
    finally:
        server.stop()


def _predictions(server: Server, rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [httpx.post(f"{server.url}/predict", json={"features": r, "key": key}).json() for r in rows]


def _tensors(metadata: dict[str, Any], rows: list[dict[str, Any]], binary: bool) -> list[Any]:
    """Input tensors built the way a Triton client does: from the model's metadata, with numpy."""
    import numpy as np
    import tritonclient.http as triton
    from tritonclient.utils import triton_to_np_dtype

    tensors = []
    for spec in metadata["inputs"]:
        values = np.array([r[spec["name"]] for r in rows], dtype=triton_to_np_dtype(spec["datatype"]))
        tensor = triton.InferInput(spec["name"], [len(rows)], spec["datatype"])
        tensor.set_data_from_numpy(values, binary_data=binary)
        tensors.append(tensor)
    return tensors


def test_tritonclient_drives_the_v2_protocol(served: tuple[Server, str], serving_store: Store) -> None:
    import numpy as np
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    server, name = served
    rows = complete_rows(serving_store.frame, 4)
    client = triton.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(name)
    assert client.get_server_metadata()["name"] == "airflow-mlops"
    metadata = client.get_model_metadata(name)
    assert [i["name"] for i in metadata["inputs"]] == FEATURES
    answers = _predictions(server, rows, key="user-7")
    for binary in (True, False):  # Triton's binary tensor extension (its default) and plain JSON
        result = client.infer(
            name, _tensors(metadata, rows, binary), request_id=f"t-{binary}", headers={"X-Request-Key": "user-7"}
        )
        response = result.get_response()
        assert response["id"] == f"t-{binary}"
        assert response["parameters"]["arm"] == answers[0]["arm"]
        assert response["model_version"] == answers[0]["version"]
        assert result.as_numpy("predict").tolist() == [a["prediction"] for a in answers]
        probabilities = result.as_numpy("predict_proba")
        assert probabilities.shape == (4, 2)
        assert probabilities[:, 1].tolist() == pytest.approx([a["probability"]["1"] for a in answers])
    only = client.infer(
        name, _tensors(metadata, rows[:1], True), outputs=[triton.InferRequestedOutput("predict", binary_data=False)]
    )
    assert [o["name"] for o in only.get_response()["outputs"]] == ["predict"]

    good = _tensors(metadata, rows[:1], True)
    bad_shape = triton.InferInput("tenure_months", [1, 2], "FP64")
    bad_shape.set_data_from_numpy(np.array([[1.0, 2.0]]))
    bad_type = triton.InferInput("monthly_usage", [1], "BYTES")
    bad_type.set_data_from_numpy(np.array(["12.5"], dtype=object))
    cases = [
        (name, [bad_shape, *good[1:]], "422", "inputs.tenure_months.shape: expected [rows] or [rows, 1]"),
        (
            name,
            [t for t in good if t.name() != "monthly_usage"] + [bad_type],
            "422",
            "BYTES does not fit the model's double column",
        ),
        (name, good[1:], "422", "row[0]: missing required column(s) 'tenure_months'"),
        ("no_such_model", good, "404", f"unknown model 'no_such_model': this server serves '{name}'"),
    ]
    for model, tensors, status, message in cases:
        with pytest.raises(InferenceServerException) as caught:
            client.infer(model, tensors)
        assert caught.value.status() == status, caught.value
        assert message in caught.value.message(), caught.value
    assert client.is_server_ready()  # bad requests leave the server serving
    client.close()


def test_mlflow_scoring_client_and_payloads_work_unchanged(served: tuple[Server, str], serving_store: Store) -> None:
    import pandas as pd
    from mlflow.models import convert_input_example_to_serving_input
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient
    from mlflow.utils.proto_json_utils import dump_input_data

    server, name = served
    rows = complete_rows(serving_store.frame, 3)
    frame = pd.DataFrame(rows, columns=FEATURES)
    expected = [a["prediction"] for a in _predictions(server, rows, key="user-1")]
    client = ScoringServerClient("127.0.0.1", server.port)
    client.wait_server_ready(timeout=30)
    assert client.invoke(frame).get_predictions(predictions_format="ndarray").tolist() == expected
    payloads = [
        convert_input_example_to_serving_input(frame),  # dataframe_split, as MLflow writes serving examples
        dump_input_data(frame.to_dict(orient="records"), inputs_key="dataframe_records"),
        dump_input_data(frame.to_dict(orient="records"), inputs_key="instances"),
        convert_input_example_to_serving_input({c: frame[c].tolist() for c in FEATURES}),  # inputs, by column
    ]
    for payload in payloads:
        response = httpx.post(
            f"{server.url}/invocations",
            content=payload,
            headers={"Content-Type": "application/json", "X-Request-Key": "user-1"},
        )
        assert response.status_code == 200, (payload, response.text)
        assert response.json() == {"predictions": expected}
    with_gap = frame.assign(tenure_months=[None, 3.0, 4.0])  # a required column left empty (NaN in MLflow's JSON)
    response = httpx.post(
        f"{server.url}/invocations",
        content=convert_input_example_to_serving_input(with_gap),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    error = response.json()
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "dataframe_split.data[0].tenure_months: null/NaN is not allowed" in error["message"]
    with pytest.raises(Exception, match=r"error code 422.*missing required column\(s\) 'tenure_months'"):
        client.invoke(frame.drop(columns=["tenure_months"]))
    assert json.loads(httpx.get(f"{server.url}/ready").text)["ready"] is True
