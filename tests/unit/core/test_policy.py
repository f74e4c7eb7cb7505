from __future__ import annotations

import pytest

from mlgate.core.errors import PolicyError
from mlgate.core.policy import load_policy, parse_policy
from tests.helpers import default_policy, write_policy

pytestmark = pytest.mark.unit


def test_the_shipped_policy_loads(repo_root):
    policy = load_policy(repo_root / "policies" / "default.yaml")
    assert {"data.integrity", "data.expectations", "model.training", "model.artifact"} <= set(
        policy.promotion.required_gates)
    assert not {g for g in policy.promotion.required_gates if g.startswith(("monitor.", "incident."))}
    assert policy.resolve(policy.expectations().suite).exists()


def _with(path: list[str], value):
    data = default_policy()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(("data", "key_path", "found"), [
    (_with(["promotion", "required_gates"], ["data.integrity", "data.integrty"]), "promotion.required_gates",
     "data.integrty"),
    (_with(["gates", "data.integrity", "algorithm"], "md5"), "gates.data.integrity.algorithm", "'md5'"),
    (_with(["gates", "data.expectations", "max_failed_expectations"], -1),
     "gates.data.expectations.max_failed_expectations", "-1"),
    (_with(["promotion", "max_evidence_age_hours"], "soon"), "promotion.max_evidence_age_hours", "'soon'"),
    (_with(["promotion", "colour"], "red"), "promotion.colour", "'red'"),
    (_with(["version"], 2), "version", "2"),
    (_with(["gates", "data.pii"], {"action": "erase"}), "gates.data.pii.action", "'erase'"),
    (_with(["gates", "monitor.drift"], {"alpha": 2}), "gates.monitor.drift.alpha", "2"),
    (_with(["gates", "data.piii"], {}), "gates", "data.piii"),
], ids=["unknown-gate", "bad-algorithm", "negative-count", "not-a-number", "unknown-key", "bad-version",
        "bad-pii-action", "bad-drift-alpha", "unknown-gate-section"])
def test_an_invalid_policy_names_key_path_expectation_and_value(data, key_path, found):
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, "p.yaml")
    message = str(caught.value)
    assert f"{key_path}:" in message
    assert f"found {found}" in message or found in message
    assert message.startswith("p.yaml: invalid policy")


def test_a_policy_for_checks_alone_needs_no_promotion_block_until_something_promotes():
    data = default_policy()
    del data["promotion"]
    policy = parse_policy(data, "checks.yaml")
    assert policy.section("data.integrity").algorithm == "sha256" and policy.digest.startswith("sha256:")
    with pytest.raises(PolicyError, match="checks.yaml: promotion: expected a block with model_name"):
        _ = policy.promotion


def test_every_problem_is_reported_in_one_pass_top_level_and_inside_gate_sections():
    data = _with(["version"], 2)
    data["gates"]["data.pii"]["actoin"] = "block"
    data["gates"]["monitor.drift"]["alpha"] = 2
    data["gates"]["data.piii"] = {}
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, "p.yaml")
    message = str(caught.value)
    assert message.startswith("p.yaml: invalid policy (4 problem(s))")
    for problem in ("version:", "gates.data.pii.actoin:", "gates.monitor.drift.alpha:", "gates: Value error, "
                    "unknown gate id(s) ['data.piii']"):
        assert problem in message


def test_the_unknown_gate_message_does_not_dump_the_mapping():
    data = _with(["gates", "data.piii"], {"secret_looking": "x" * 50})
    with pytest.raises(PolicyError) as caught:
        parse_policy(data)
    assert "found {" not in str(caught.value) and "secret_looking" not in str(caught.value)


@pytest.mark.parametrize(("text", "match"), [
    ("version: [1\n", "not valid YAML"),
    ("- just\n- a list\n", "expected a mapping at the top level, found list"),
], ids=["yaml-syntax", "not-a-mapping"])
def test_unreadable_policy_files(tmp_path, text, match):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=match):
        load_policy(path)


def test_a_missing_policy_file_names_the_path(tmp_path):
    with pytest.raises(PolicyError, match="nope.yaml: cannot read the policy file"):
        load_policy(tmp_path / "nope.yaml")


def test_the_digest_changes_with_any_threshold_and_not_with_the_file_location(tmp_path):
    first = load_policy(write_policy(tmp_path / "a.yaml"))
    moved = load_policy(write_policy(tmp_path / "b.yaml"))
    stricter = parse_policy(_with(["promotion", "max_evidence_age_hours"], 1))
    assert first.digest == moved.digest
    assert stricter.digest != first.digest


@pytest.mark.parametrize("promotion", [True, False], ids=["with-promotion", "checks-only"])
def test_a_dumped_policy_validates_again_to_the_same_digest(promotion):
    """The model validation gates hand the policy to an isolated child as ``model_dump(mode="json")``."""
    data = default_policy()
    if not promotion:
        del data["promotion"]
    policy = parse_policy(data, "p.yaml")
    dumped = policy.model_dump(mode="json")
    assert parse_policy(dumped, "p.yaml").digest == policy.digest
