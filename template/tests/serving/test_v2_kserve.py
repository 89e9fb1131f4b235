"""KServe's own V2 client (the SDK the kubernetes answer validates its manifests with) scores
every task kind through /v2 as /predict does, tensors sent as JSON and as binary."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from support import TARGETS

from .conftest import RunningServer
from .test_v2 import NAME, predict, sample_columns, tensors


async def _score(url: str, binary: bool) -> tuple[bool, bool, dict[str, np.ndarray]]:
    columns = sample_columns()
    inputs = []
    for name, (datatype, array) in tensors(columns).items():
        tensor = InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
    try:
        ready = await client.is_server_ready(url)
        model_ready = await client.is_model_ready(url, NAME)
        request = InferRequest(NAME, inputs, request_id="kserve-1")
        response = await client.infer(url, request, model_name=NAME)
    finally:
        await client.close()
    assert response.id == "kserve-1"
    return ready, model_ready, {output.name: output.as_numpy() for output in response.outputs}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("kind", TARGETS)
def test_the_kserve_client_scores_as_predict_does(
    kind_servers: dict[str, RunningServer], kind: str, binary: bool
) -> None:
    server = kind_servers[kind]
    ready, model_ready, outputs = asyncio.run(_score(server.url, binary))
    assert ready
    assert model_ready
    expected = predict(server, sample_columns())
    labels = [v.decode() if isinstance(v, bytes) else v for v in outputs["predictions"].tolist()]
    assert labels == expected["predictions"]
    if TARGETS[kind].get("classes"):
        assert outputs["probabilities"].tolist() == expected["probabilities"]
    else:
        assert set(outputs) == {"predictions"}
