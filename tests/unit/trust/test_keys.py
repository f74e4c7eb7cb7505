from __future__ import annotations

import pytest

from mlgate.core.errors import GateInputError
from mlgate.trust.attestation import generate_key, public_key_pem
from mlgate.trust.keys import KEY_FILE_ENV, TRUSTED_ENV, KeyRing, keyring_from_env, pem_blocks, public_keys

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return generate_key(tmp_path_factory.mktemp("keys") / "k.pem")


def test_a_pem_pasted_on_one_line_is_rebuilt(pair):
    private, _ = pair
    flattened = private.read_text().replace("\n", " ")
    signer = KeyRing(signing_pem=flattened).signer()
    assert public_key_pem(signer) == KeyRing(signing_file=str(private)).trusted_keys()[0]


def test_public_keys_come_from_text_or_files_and_several_blocks_split(pair, tmp_path):
    _, public = pair
    text = public.read_text()
    assert public_keys([text + text]) == (text, text)
    assert public_keys([public]) == pem_blocks(text)
    (tmp_path / "empty.pub").write_text("not a key")
    with pytest.raises(GateInputError, match="empty.pub: holds no PEM public key"):
        public_keys([tmp_path / "empty.pub"])
    with pytest.raises(GateInputError, match="missing.pub: cannot read the trusted public key"):
        public_keys([tmp_path / "missing.pub"])


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "no trusted public keys configured"),
    ({KEY_FILE_ENV: "signer"}, "signer's own key"),
    ({KEY_FILE_ENV: "signer", TRUSTED_ENV: "other"}, "other key"),
], ids=["nothing", "signing-key-only", "explicit-trust"])
def test_trusted_keys_are_configured_ones_else_the_signers_own(pair, tmp_path, monkeypatch, env, expected):
    _, other = generate_key(tmp_path / "other.pem")
    paths = {"signer": str(pair[0]), "other": f" {other} ,"}
    for variable in (KEY_FILE_ENV, TRUSTED_ENV, "MLGATE_SIGNING_KEY"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, paths[value])
    ring = keyring_from_env()
    if expected.startswith("no trusted"):
        with pytest.raises(GateInputError, match=expected):
            ring.trusted_keys()
        with pytest.raises(GateInputError, match="no signing key configured"):
            ring.signer()
    else:
        own = pair[1].read_text() if expected == "signer's own key" else other.read_text()
        assert ring.trusted_keys() == (own,)
