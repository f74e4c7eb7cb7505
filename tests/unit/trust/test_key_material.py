"""Attack 5: a signing-key *path* setting that holds the PEM itself never puts the key anywhere: not in an
exception, XCom, the gate JSON, version tags, the audit trail, stderr or a repr."""

from __future__ import annotations

import json

import pytest
import yaml
from airflow.sdk.exceptions import AirflowException

from mlgate.cli import main
from mlgate.core.policy import load_policy
from mlgate.core.redaction import REDACTED, redact
from mlgate.hooks.mlflow import MlflowHook
from mlgate.trust.audit import read_decisions
from mlgate.trust.keys import KEY_FILE_ENV, TRUSTED_ENV, KeyRing
from mlgate.trust.registry import download_evidence
from tests.helpers import context, integrity_op, new_run, register_version, write_policy

pytestmark = pytest.mark.unit


@pytest.fixture
def pem(signing_key) -> str:
    return signing_key.read_text()


def leaks(text: str, pem: str) -> list[str]:
    """Every piece of the key found in ``text``: the armour or any base64 line of its body."""
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return [piece for piece in ["PRIVATE KEY", *body] if piece in text]


def test_redact_removes_pem_blocks_whole_cut_or_on_one_line_and_keeps_digests(pem):
    digest = "sha256:" + "ab" * 32
    for text in (f"x {pem} y {digest}", f"{pem[:90]}", pem.replace("\n", " "), f"path {pem!r}: too long"):
        assert leaks(redact(text), pem) == [], text[:40]
    assert digest in redact(f"x {pem} y {digest}") and REDACTED in redact(pem)


def test_a_key_ring_repr_hides_the_key(pem):
    for ring in (KeyRing(signing_pem=pem), KeyRing(signing_file=pem)):
        assert leaks(repr(ring), pem) == [] and leaks(str(ring), pem) == []
        assert "signing key:" in repr(ring)


def test_a_gate_whose_key_path_holds_the_pem_fails_without_leaking_it(pem, tmp_path, monkeypatch, caplog, capsys):
    run = new_run(tmp_path)
    monkeypatch.setenv(KEY_FILE_ENV, pem)
    ctx = context(run, "data_integrity")
    with pytest.raises(AirflowException) as caught:
        integrity_op(run).execute(ctx)
    assert "data.integrity: its evidence could not be recorded" in str(caught.value)
    assert ctx["ti"].pushed["data.integrity"]["status"] == "error"
    out, err = capsys.readouterr()
    seen = "\n".join([str(caught.value), repr(caught.value), json.dumps(ctx["ti"].pushed), caplog.text, out, err])
    assert leaks(seen, pem) == []


def test_promotion_and_check_with_the_pem_in_the_path_setting_leak_nothing(pem, signing_key, tmp_path, monkeypatch,
                                                                           capsys):
    """The CLI promotes (refused: its key cannot be read) and checks a gate; every place text goes is clean."""
    run = new_run(tmp_path)
    data = yaml.safe_load(run["policy"].read_text())
    data["promotion"]["required_gates"] = ["model.training"]
    policy = load_policy(write_policy(run["policy"], data))
    client = MlflowHook().get_conn()
    version = register_version(client, policy, run["model"])
    monkeypatch.setenv(KEY_FILE_ENV, pem)
    monkeypatch.setenv(TRUSTED_ENV, f"{signing_key}.pub")
    capsys.readouterr()
    code = main(["promote", run["model"], version, "--policy", str(run["policy"])])
    check = main(["check", "data.integrity", str(run["data"]), "--manifest", str(run["manifest"]), "--policy",
                  str(run["policy"]), "--json", str(tmp_path / "integrity.json")])
    out, err = capsys.readouterr()
    assert code == 1 and check == 2 and "cannot read the signing key" in err
    model_version = client.get_model_version(run["model"], version)
    stored = download_evidence(client, model_version.run_id)["registry.promote"]
    assert any("cannot read the signing key" in f.message for f in stored.findings), stored.findings
    seen = "\n".join([out, err, json.dumps(model_version.tags), stored.to_json(),
                      json.dumps([r.to_dict() for r in read_decisions(client, run["model"])]),
                      (tmp_path / "integrity.json").read_text()])
    assert leaks(seen, pem) == []
