"""Attacks on the signed alias state, revocations and the audit trail, by an A1 attacker: an ``MlflowClient``
on the real store and no signing key. Shared by the embedded-store tests and the ``mlflow server`` tests:
each scenario takes a client and returns nothing, asserting that the attack is refused or detected."""

from __future__ import annotations

import base64
import json
import tempfile
import uuid
from pathlib import Path

import pytest

from mlgate.cli import main
from mlgate.core.policy import Policy, load_policy
from mlgate.gates.monitor.incident import TAG, respond
from mlgate.trust.alias_store import TAG_REVOCATION, TAG_STATE, seen_path
from mlgate.trust.audit import EXPERIMENT, FOLDER, MODEL_TAG
from mlgate.trust.audit_chain import record_hash, seal
from mlgate.trust.keys import keyring_from_env
from mlgate.trust.loading import UntrustedModelError, load_verified_model
from mlgate.trust.promote import promote
from mlgate.trust.registry import keyed_run
from tests.helpers import default_policy, register_version, write_policy

ALIAS = "champion"


def new_policy(reference: str = "attested") -> Policy:
    """A policy of its own model; ``reference``: what its monitoring gates accept (ADR 0060)."""
    data = default_policy()
    data["promotion"]["model_name"] = f"alias-{uuid.uuid4().hex[:8]}"
    data["promotion"]["required_gates"] = ["model.training"]
    for gate in ("monitor.drift", "monitor.queries"):
        data["gates"][gate]["reference"] = reference
    return load_policy(write_policy(Path(tempfile.mkdtemp(prefix="mlgate-policy-")) / "policy.yaml", data))


def promoted(client, policy: Policy, count: int, signature=None, python_model=None) -> list[str]:
    """``count`` loadable versions, each promoted (signed) in turn: the alias ends on the last."""
    name, versions = policy.promotion.model_name, []
    for _ in range(count):
        version = register_version(client, policy, name, pyfunc=True, signature=signature,
                                   python_model=python_model)
        result = promote(client, policy, name, version, "test:promoter", keyring_from_env())
        assert str(result.status) == "passed", result.top_failures()
        versions.append(version)
    return versions


def load(client, policy: Policy, uri: str):
    return load_verified_model(uri, policy=policy, tracking_uri=client.tracking_uri)


def refused(client, policy: Policy, uri: str, match: str) -> None:
    with pytest.raises(UntrustedModelError, match=match):
        load(client, policy, uri)


def state_tag(client, name: str) -> str:
    return client.get_registered_model(name).tags[TAG_STATE + ALIAS]


def forget(client, name: str) -> None:
    """A fresh client: this machine's memory of the model's alias state is dropped."""
    path = seen_path()
    data = json.loads(path.read_text())
    data.pop(f"{client.tracking_uri}#{name}", None)
    path.write_text(json.dumps(data))


def incident(client, policy: Policy, version: str, key: str):
    return respond(client, policy, policy.promotion.model_name, version, [], reason="bad answers", key=key)


def audit_verify(capsys, name: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["audit", name, "--verify"])
    return code, capsys.readouterr().err


# --- the attacker's tools on the audit trail -----------------------------------------------------

def _audit_run(client, name: str) -> str:
    return keyed_run(client, EXPERIMENT, MODEL_TAG, name, create=False)


def audit_files(client, name: str) -> list[tuple[str, bytes]]:
    run_id = _audit_run(client, name)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(client.download_artifacts(run_id, FOLDER, tmp))
        return [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.json"))]


def put_record(client, name: str, file_name: str, data: bytes) -> None:
    """Write (or overwrite) one record file through the tracking server."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / file_name
        path.write_bytes(data)
        client.log_artifact(_audit_run(client, name), str(path), artifact_path=FOLDER)


def delete_record(client, name: str, file_name: str) -> None:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    run = client.get_run(_audit_run(client, name))
    get_artifact_repository(run.info.artifact_uri).delete_artifacts(f"{FOLDER}/{file_name}")


def edited(data: bytes) -> bytes:
    """The record with its decision flipped, the signature kept."""
    envelope = json.loads(data)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["record"]["decision"] = "blocked" if payload["record"]["decision"] != "blocked" else "promoted"
    envelope["payload"] = base64.b64encode(json.dumps(payload, sort_keys=True).encode()).decode()
    return json.dumps(envelope).encode()


# --- scenarios -----------------------------------------------------------------------------------

def replayed_alias_state_is_a_rollback(client, policy: Policy) -> None:
    name = policy.promotion.model_name
    first = register_version(client, policy, name, pyfunc=True)
    promote(client, policy, name, first, "test:promoter", keyring_from_env())
    old = state_tag(client, name)
    (second,) = promoted(client, policy, 1)
    assert load(client, policy, f"models:/{name}@{ALIAS}").predict([0])  # this client trusts sequence 2 now
    client.set_registered_model_tag(name, TAG_STATE + ALIAS, old)  # the attacker puts the old signed state back
    client.set_registered_model_alias(name, ALIAS, first)
    refused(client, policy, f"models:/{name}@{ALIAS}", "sequence 1 is older than sequence 2.*rollback")
    refused(client, policy, f"models:/{name}/{first}", "rollback")


def alias_moved_back_directly(client, policy: Policy, capsys) -> None:
    name = policy.promotion.model_name
    first, second = promoted(client, policy, 2)
    assert audit_verify(capsys, name)[0] == 0
    client.set_registered_model_alias(name, ALIAS, first)
    refused(client, policy, f"models:/{name}@{ALIAS}", f"serves version {first}.*says version {second}.*outside")
    code, err = audit_verify(capsys, name)
    assert code == 1 and f"alias champion -> version {first} is explained by no audit record" in err


def revoked_version_is_refused(client, policy: Policy) -> None:
    name = policy.promotion.model_name
    first, second = promoted(client, policy, 2)
    assert incident(client, policy, second, "test/revoke").metrics["alias_after"] == first
    assert load(client, policy, f"models:/{name}@{ALIAS}").predict([0])
    refused(client, policy, f"models:/{name}/{second}", f"{second} was revoked")
    client.set_registered_model_alias(name, ALIAS, second)  # straight back to the revoked version
    refused(client, policy, f"models:/{name}@{ALIAS}", "moved outside mlgate")


def revocation_tag_removed(client, policy: Policy) -> None:
    name = policy.promotion.model_name
    first = register_version(client, policy, name, pyfunc=True)
    promote(client, policy, name, first, "test:promoter", keyring_from_env())
    (second,) = promoted(client, policy, 1)
    before_incident = state_tag(client, name)
    incident(client, policy, second, "test/untag")
    load(client, policy, f"models:/{name}@{ALIAS}")  # this client has seen the revocation
    for tag in (TAG_REVOCATION, TAG):
        client.delete_model_version_tag(name, second, tag)
    refused(client, policy, f"models:/{name}/{second}", f"{second} was revoked")  # the signed state lists it
    assert str(promote(client, policy, name, second, "test:promoter", keyring_from_env()).status) == "blocked"
    # and with the older state (which does not list it) put back too:
    client.set_registered_model_tag(name, TAG_STATE + ALIAS, before_incident)
    client.set_registered_model_alias(name, ALIAS, second)
    refused(client, policy, f"models:/{name}@{ALIAS}", "rollback")
    refused(client, policy, f"models:/{name}/{second}", "rollback")


def revocation_tag_outlives_a_fresh_client(client, policy: Policy) -> None:
    """A client with no memory still sees the rollback: the version's signed revocation is not listed."""
    name = policy.promotion.model_name
    promoted(client, policy, 1)
    (second,) = promoted(client, policy, 1)
    before_incident = state_tag(client, name)
    incident(client, policy, second, "test/fresh")
    client.set_registered_model_tag(name, TAG_STATE + ALIAS, before_incident)
    client.set_registered_model_alias(name, ALIAS, second)
    forget(client, name)
    refused(client, policy, f"models:/{name}@{ALIAS}", "does not list.*rollback")


def audit_tampering_is_detected(client, policy: Policy, capsys, how: str) -> None:
    name = policy.promotion.model_name
    promoted(client, policy, 3)
    files = audit_files(client, name)
    assert len(files) == 3 and audit_verify(capsys, name)[0] == 0
    (n0, d0), (n1, d1), (n2, _) = files
    if how == "edited":
        put_record(client, name, n1, edited(d1))
    elif how == "deleted":
        delete_record(client, name, n1)
    elif how == "deleted-last":
        delete_record(client, name, n2)
    elif how == "inserted":
        put_record(client, name, n1.replace(n1[:8], "20000101"), d0)  # a copy of a signed record, anywhere
    elif how == "forged":  # a new record, sealed as mlgate would but without the key
        record = {**json.loads(base64.b64decode(json.loads(d1)["payload"]))["record"], "decision": "promoted"}
        put_record(client, name, n2.replace(".json", "0.json"), seal(record, n2, [record_hash(d1)], None))
    elif how == "reordered":
        put_record(client, name, n0, d1)
        put_record(client, name, n1, d0)
    code, err = audit_verify(capsys, name)
    assert code == 1, err
    assert "NOT VERIFIED" in err


def never_signed_is_never_restored(client, policy: Policy) -> None:
    name = policy.promotion.model_name
    register_version(client, policy, name, pyfunc=True)  # its evidence passes; nobody promoted (signed) it
    (second,) = promoted(client, policy, 1)
    result = incident(client, policy, second, "test/unsigned")
    assert result.metrics["alias_after"] is None
    assert client.get_registered_model(name).aliases == {}
    refused(client, policy, f"models:/{name}/{second}", "revoked")
