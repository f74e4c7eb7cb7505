"""Fixtures of the monitoring tests that register versions: the embedded store and a policy of their own."""

from __future__ import annotations

import uuid

import pytest

from mlgate.core.policy import load_policy
from mlgate.trust.registry import default_tracking_uri
from tests.helpers import default_policy, write_policy


@pytest.fixture
def client():
    """The embedded store, for the registry too (MLflow's process-wide registry URI may point elsewhere)."""
    import mlflow

    uri = default_tracking_uri()
    return mlflow.MlflowClient(uri, uri)


@pytest.fixture
def policy(tmp_path):
    """A policy signed by its owner (the session key): the signer trusts no other (ADR 0013)."""
    data = default_policy()
    data["promotion"]["model_name"] = f"model-{uuid.uuid4().hex[:8]}"
    data["promotion"]["required_gates"] = ["model.training"]
    return load_policy(write_policy(tmp_path / "policy.yaml", data))
