"""``mlgate init`` on a CSV that is not the demo's: what it writes is a valid, owner-signed policy, a suite the
data passes, a DAG Airflow can parse, and nothing is overwritten. The DAG promoting is in tests/dags."""

from __future__ import annotations

import ast
import json

import pandas as pd
import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.policy import load_policy
from mlgate.gates.data.expectations import check_expectations
from mlgate.scaffold import init_project, profile_suite
from mlgate.trust.keys import KeyRing
from mlgate.trust.trusted_policy import trust_policy

pytestmark = pytest.mark.unit


@pytest.fixture
def patients(tmp_path):
    frame = pd.DataFrame({
        "contact": [f"p{i}@clinic.example.org" for i in range(200)],
        "age": [20 + i % 60 for i in range(200)],
        "ward": ["a", "b", "c", "d"] * 50,
        "readmitted": [i % 3 == 0 for i in range(200)],
    })
    path = tmp_path / "patients.csv"
    frame.to_csv(path, index=False)
    return path


def test_init_writes_a_project_whose_policy_is_owner_signed_and_whose_suite_the_data_passes(tmp_path, patients):
    scaffold = init_project(tmp_path / "proj", patients, "readmitted", gates=("data.pii", "data.expectations"))
    policy = load_policy(scaffold.policy)
    assert set(policy.promotion.required_gates) == {"data.pii", "data.expectations", "data.integrity",
                                                    "model.training", "model.artifact"}
    assert policy.section("data.pii").allowed == {"contact": ("email",)}
    public = (scaffold.key.parent / "signing.pem.pub").read_text()
    assert trust_policy(policy, KeyRing(trusted=(public,), source="test")).startswith("policy signed by owner key")
    assert check_expectations(patients, policy).passed
    training = (scaffold.directory / "training" / "train_model.py").read_text()
    assert "FEATURES = ['age', 'ward']" in training  # neither the PII column nor the label
    ast.parse(scaffold.dag.read_text())
    assert (scaffold.directory / "policies" / "threat-model.yaml").is_file()


def test_the_profiled_suite_catches_what_the_sample_never_held(tmp_path, patients):
    scaffold = init_project(tmp_path / "proj", patients, "readmitted")
    frame = pd.read_csv(patients)
    frame.loc[0, "ward"] = "z"
    frame.loc[1, "age"] = 500
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    result = check_expectations(bad, load_policy(scaffold.policy))
    assert {f.location for f in result.findings} == {"column ward", "column age"}


def test_profile_suite_reads_types_nulls_and_categories():
    frame = pd.DataFrame({"n": [1.0, 3.0, None], "c": ["x", "y", "x"], "id": ["a", "b", "c"]})
    kinds = {(e["type"], e["kwargs"].get("column")) for e in profile_suite(frame, "s")["expectations"]}
    assert ("expect_column_values_to_be_between", "n") in kinds and ("expect_column_values_to_not_be_null", "n") \
        not in kinds
    assert ("expect_column_values_to_be_in_set", "c") in kinds and ("expect_column_values_to_be_in_set", "id") \
        not in kinds  # every value distinct: an identifier, not a category


def test_init_never_overwrites_a_project(tmp_path, patients):
    init_project(tmp_path / "proj", patients, "readmitted")
    with pytest.raises(GateInputError, match="already holds an mlgate project"):
        init_project(tmp_path / "proj", patients, "readmitted")


@pytest.mark.parametrize(("target", "gates", "match"), [
    ("nope", ("data.pii",), "has no column 'nope'"),
    ("readmitted", ("model.robustness",), "init scaffolds"),
], ids=["unknown-target", "unsupported-gate"])
def test_init_refuses_what_it_cannot_scaffold(tmp_path, patients, target, gates, match):
    with pytest.raises(GateInputError, match=match):
        init_project(tmp_path / "proj", patients, target, gates=gates)
    assert not (tmp_path / "proj" / "policies").exists()


def test_the_cli_prints_the_connection_command(tmp_path, patients, capsys):
    from mlgate.cli import main

    assert main(["init", str(tmp_path / "proj"), "--data", str(patients), "--target", "readmitted"]) == 0
    out = capsys.readouterr().out
    assert "airflow connections add mlgate_signing_default --conn-type mlgatesigning" in out
    assert "airflow dags test mlgate_patients" in out
    assert json.loads((tmp_path / "proj" / "expectations" / "patients.json").read_text())["name"] == "patients"
