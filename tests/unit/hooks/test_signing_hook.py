from __future__ import annotations

import json
import logging

import pytest

from mlgate.hooks.signing import SigningKeyHook
from mlgate.trust.attestation import generate_key

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("conn_type", ["mlgatesigning", "mlgate_signing"], ids=["current", "old-type-name"])
def test_the_key_is_read_from_a_connection_of_either_type_name(monkeypatch, tmp_path, conn_type):
    private, _ = generate_key(tmp_path / "k.pem")
    monkeypatch.setenv("AIRFLOW_CONN_MLGATE_SIGNING_DEFAULT", json.dumps(
        {"conn_type": conn_type, "password": private.read_text()}))
    keys = SigningKeyHook().get_conn()
    assert keys.has_signing_key and keys.source == "connection mlgate_signing_default"


def test_the_connection_type_is_a_valid_uri_scheme(caplog):
    from airflow.models.connection import Connection

    with caplog.at_level(logging.WARNING):
        uri = Connection(conn_id="x", conn_type=SigningKeyHook.conn_type, password="p").get_uri()
    assert uri.startswith("mlgatesigning://") and "RFC3986" not in caplog.text
