from __future__ import annotations

import time

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mlgate.core.errors import MlgateError
from mlgate.serving.auth import Authenticator, JwtVerifier, KeyStore, Unauthenticated, new_key

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path):
    entries, keys = [], {}
    for client, models in (("a", ["loans"]), ("b", ["*"])):
        keys[client], entry = new_key(client, models)
        entries.append(entry)
    (tmp_path / "keys.yaml").write_text(yaml.safe_dump({"keys": entries}))
    return KeyStore.from_file(tmp_path / "keys.yaml"), keys, (tmp_path / "keys.yaml").read_text()


def test_keys_are_stored_hashed_and_identify_their_client(store):
    keys_store, keys, text = store
    assert not any(key in text for key in keys.values())
    assert keys_store.identify(keys["a"]).client == "a"
    assert keys_store.identify(keys["a"]).may_use("loans") and not keys_store.identify(keys["a"]).may_use("x")
    assert keys_store.identify(keys["b"]).may_use("anything")
    with pytest.raises(Unauthenticated):
        keys_store.identify(keys["a"][:-1])


@pytest.mark.parametrize("text", ["keys: []", "keys: [{id: a, sha256: zz, models: [m]}]",
                                  "keys: [{id: a, sha256: abcd, models: [m]}]", "keys: [{id: a}]"],
                         ids=["empty", "not-hex", "short", "fields"])
def test_a_bad_key_file_is_refused(tmp_path, text):
    (tmp_path / "k.yaml").write_text(text)
    with pytest.raises(MlgateError, match="keys"):
        KeyStore.from_file(tmp_path / "k.yaml")


def test_no_credential_source_is_refused():
    with pytest.raises(MlgateError, match="unauthenticated"):
        Authenticator(None, None)


def test_jwt_bearer_mode(tmp_path, store):
    private = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "idp.pem").write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    auth = Authenticator(store[0], JwtVerifier(tmp_path / "idp.pem", "mlgate", "https://idp"))

    def token(**claims):
        body = {"sub": "svc", "aud": "mlgate", "iss": "https://idp", "exp": time.time() + 60, "models": "loans"}
        return jwt.encode({**body, **claims}, private, algorithm="ES256")

    identity = auth.identify({"authorization": f"Bearer {token()}"})
    assert identity.client == "svc" and identity.may_use("loans")
    for bad in (token(aud="other"), token(exp=time.time() - 5), token(iss="https://evil"),
                jwt.encode({"sub": "x", "exp": time.time() + 60}, "secret", algorithm="HS256")):
        with pytest.raises(Unauthenticated):
            auth.identify({"authorization": f"Bearer {bad}"})
    assert auth.identify({"x-api-key": store[1]["a"]}).client == "a"
    with pytest.raises(Unauthenticated, match="no credential"):
        auth.identify({})
