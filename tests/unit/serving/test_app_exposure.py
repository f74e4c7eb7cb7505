"""What ``mlgate serve`` tells a caller without a credential (red team, A3).

The OpenAPI schema of ``POST /predict`` is built from the training profile: it lists every category seen in
training (a rare one is one person's value) and the profile's numeric span. Only a client that may use the
model gets it."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from mlgate.serving.app import create_app
from mlgate.serving.config import ServeConfig
from tests.fixtures.serving import write_keys

pytestmark = pytest.mark.unit


@pytest.fixture
def app_and_keys(tmp_path):
    keys = write_keys(tmp_path / "keys.yaml", {"valid": ["loans"], "other": ["another-model"]})
    config = ServeConfig(model_uri="models:/loans@champion", api_keys=str(tmp_path / "keys.yaml"),
                         limits_storage="async+memory://", inference_log=str(tmp_path / "log.jsonl"))
    return create_app(config), keys  # no lifespan: nothing is loaded, the routes answer as they are


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "mlg_not-a-key"}, "other"],
                         ids=["no-credential", "unknown-key", "key-for-another-model"])
def test_the_input_schema_is_only_for_clients_of_the_model(app_and_keys, headers):
    app, keys = app_and_keys
    headers = {"X-API-Key": keys[headers]} if isinstance(headers, str) else headers
    answer = TestClient(app).get("/openapi.json", headers=headers)
    assert answer.status_code in (401, 403)
    assert "components" not in answer.text


def test_a_client_of_the_model_reads_the_input_schema(app_and_keys):
    app, keys = app_and_keys
    answer = TestClient(app).get("/openapi.json", headers={"X-API-Key": keys["valid"]})
    assert answer.status_code == 200 and "/predict" in answer.json()["paths"]
