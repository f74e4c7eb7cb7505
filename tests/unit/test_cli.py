"""The ``mlgate`` command as a CI system runs it: a real subprocess, exit codes 0/1/2, JSON evidence."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mlgate.core.results import GateResult
from tests.helpers import write_policy

pytestmark = pytest.mark.unit


def mlgate(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mlgate.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.fixture
def pinned(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("x\n1\n")
    done = mlgate("pin", data, "--out", tmp_path / "m.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return data, tmp_path / "m.json", write_policy(tmp_path / "policy.yaml")


def test_check_passes_with_exit_0_and_writes_the_result(pinned, tmp_path):
    data, manifest, policy = pinned
    done = mlgate("check", "data.integrity", data, "--manifest", manifest, "--policy", policy,
                  "--json", tmp_path / "r.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert GateResult.from_dict(json.loads((tmp_path / "r.json").read_text())).passed
    assert "status   PASSED" in done.stderr


def test_a_blocked_check_exits_1_and_summarises_the_failures(pinned, tmp_path):
    data, manifest, policy = pinned
    (data / "a.csv").write_text("x\n2\n")
    done = mlgate("check", "data.integrity", data, "--manifest", manifest, "--policy", policy, cwd=tmp_path)
    assert done.returncode == 1
    assert "data.integrity.changed: content differs from the pinned digest (a.csv)" in done.stderr


@pytest.mark.parametrize("breakage", ["policy", "manifest"])
def test_an_error_exits_2_and_says_what_and_where(pinned, tmp_path, breakage):
    data, manifest, policy = pinned
    if breakage == "policy":
        policy.write_text("version: 1\npromotion: {model_name: m, required_gates: [nope]}\n")
    else:
        manifest.write_text("{")
    done = mlgate("check", "data.integrity", data, "--manifest", manifest, "--policy", policy,
                  "--json", tmp_path / "r.json", cwd=tmp_path)
    assert done.returncode == 2
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "error"
    assert {"policy": "promotion.required_gates", "manifest": "not a valid mlgate manifest"}[breakage] in done.stderr


def test_expectations_check_uses_the_policys_suite(tmp_path, repo_root):
    from mlgate.demo.dataset import write_loans

    data = write_loans(tmp_path / "loans.csv", rows=1200)
    policy = write_policy(tmp_path / "policy.yaml")
    done = mlgate("check", "data.expectations", data, "--policy", policy, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "data.expectations" in done.stderr and "PASSED" in done.stderr


def test_a_policy_owner_pins_or_signs_a_policy_with_the_cli(tmp_path):
    """``mlgate policy digest`` prints what to pin; ``mlgate policy sign`` writes the owner's signature that
    the signer then trusts — for this policy only (an edit after signing is untrusted again)."""
    import yaml

    from mlgate.core.policy import load_policy
    from mlgate.trust.keys import KeyRing
    from mlgate.trust.trusted_policy import UntrustedPolicyError, trust_policy
    from tests.helpers import default_policy

    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(default_policy()))
    done = mlgate("keygen", tmp_path / "owner.pem", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    owner = KeyRing(policy_owners=(str(tmp_path / "owner.pem.pub"),))

    digest = mlgate("policy", "digest", policy_path, cwd=tmp_path)
    assert digest.returncode == 0 and digest.stdout.strip() == load_policy(policy_path).digest
    assert "pinned" in trust_policy(load_policy(policy_path), KeyRing(trusted_policy_digests=(digest.stdout.strip(),)))
    with pytest.raises(UntrustedPolicyError):
        trust_policy(load_policy(policy_path), owner)

    signed = mlgate("policy", "sign", policy_path, "--key", tmp_path / "owner.pem", cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr
    assert (tmp_path / "policy.yaml.dsse.json").is_file() and digest.stdout.strip() in signed.stdout
    assert "signed by owner key" in trust_policy(load_policy(policy_path), owner)

    policy_path.write_text(policy_path.read_text().replace("champion", "challenger"))
    with pytest.raises(UntrustedPolicyError, match="signed for another policy"):
        trust_policy(load_policy(policy_path), owner)
    missing = mlgate("policy", "sign", policy_path, "--key", tmp_path / "nope.pem", cwd=tmp_path)
    assert missing.returncode == 2 and "cannot read the signing key" in missing.stderr
