"""The PII, privacy and model validation operators against a real embedded MLflow store."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from mlgate.core.digests import json_digest
from mlgate.exceptions import GateConfigViolation, GatePolicyViolation
from mlgate.operators import DataPiiGateOperator, DataPrivacyGateOperator, ModelArtifactGateOperator
from mlgate.operators.validation import ModelFairnessGateOperator
from tests.helpers import (
    context,
    default_policy,
    integrity_op,
    new_run,
    pipeline_run_of,
    run_pipeline,
    write_policy,
)

pytestmark = pytest.mark.unit

CANARIES = {"ssn": "123-45-6789", "card": "4111111111111111", "aws_key": "AKIAIOSFODNN7EXAMPLE"}


@pytest.fixture
def run(tmp_path):
    return new_run(tmp_path)


def everything_mlflow_holds(client, mlflow_run, destination: Path) -> str:
    """Params, tags, metrics and the text of every artifact of the run."""
    data = mlflow_run.data
    texts = [json.dumps([data.params, data.tags, data.metrics])]
    local = Path(client.download_artifacts(mlflow_run.info.run_id, "", str(destination)))
    texts += [p.read_bytes().decode(errors="replace") for p in local.rglob("*") if p.is_file()]
    return "\n".join(texts)


def assert_no_canary_leaks(log: str, raised: BaseException, ctx, run, tmp_path: Path) -> None:
    """No canary in the task log, the exception, XCom or anything the pipeline's MLflow run holds."""
    client, mlflow_run = pipeline_run_of(run)
    surfaces = {"task log": log, "exception": str(raised), "xcom": json.dumps(ctx["ti"].pushed),
                "mlflow": everything_mlflow_holds(client, mlflow_run, tmp_path / "mlflow")}
    for name, value in CANARIES.items():
        for surface, text in surfaces.items():
            assert value not in text, f"the {name} canary leaked into the {surface}"


@pytest.fixture
def task_log(caplog):
    """Everything the operator logs: Airflow 3 task loggers are structlog loggers printing to a stream
    bound at configuration, so point that stream at a buffer for the test."""
    import io

    import structlog

    buffer, saved = io.StringIO(), structlog.get_config()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(buffer))
    with caplog.at_level(logging.DEBUG):
        yield lambda: buffer.getvalue() + caplog.text
    structlog.configure(**saved)


def test_a_pii_scan_leaks_no_found_value_anywhere(run, tmp_path, task_log):
    """Canary: a known SSN, card number and AWS key are found, and appear in no log, XCom, MLflow
    param/tag/metric/artifact, report or exception text."""
    leaky = tmp_path / "leaky.csv"
    leaky.write_text("id,notes\n1,customer ssn " + CANARIES["ssn"] + " on file\n2,card " + CANARIES["card"]
                     + " expires soon\n3,deploy key " + CANARIES["aws_key"] + " in config\n")
    op = DataPiiGateOperator(task_id="data_pii", data_path=str(leaky), policy_path=str(run["policy"]))
    ctx = context(run, "data_pii")
    with pytest.raises(GatePolicyViolation) as caught:
        op.execute(ctx)
    assert "BLOCKED" in task_log() and "which column 'notes' may not hold" in task_log(), "no task log captured"
    found = ctx["ti"].pushed["data.pii"]["metrics"]["cells_by_type"]
    assert {"us_ssn", "credit_card", "secret"} <= set(found)
    assert_no_canary_leaks(task_log(), caught.value, ctx, run, tmp_path)


def integrity_upstream(run) -> dict:
    """The data_integrity result a privacy release reads, from a real run of that task."""
    ctx = context(run, "data_integrity")
    integrity_op(run).execute(ctx)
    return {("data_integrity", "data.integrity"): ctx["ti"].pushed["data.integrity"]}


def privacy_op(run, tmp_path, ledger):
    return DataPrivacyGateOperator(task_id="data_privacy", data_path=str(run["data"]),
                                   profile_path=str(tmp_path / "profile.json"), ledger_url=ledger,
                                   policy_path=str(run["policy"]))


def test_privacy_releases_a_profile_until_the_budget_is_spent(run, tmp_path):
    policy = default_policy()
    policy["gates"]["data.privacy"]["budgets"]["default"]["epsilon"] = 2.0  # one release costs 1.6
    write_policy(run["policy"], policy)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    upstream = integrity_upstream(run)

    first = context(run, "data_privacy", upstream)
    privacy_op(run, tmp_path, ledger).execute(first)
    assert first["ti"].pushed["data.privacy"]["metrics"]["epsilon_total_after"] == pytest.approx(1.6)
    assert json.loads((tmp_path / "profile.json").read_text())["dataset_digest"] == \
        upstream[("data_integrity", "data.integrity")]["subject"]["digest"]
    digest = first["ti"].pushed["data.privacy"]["metrics"]["profile_digest"]
    kept = tmp_path / "released" / f"{digest.removeprefix('sha256:')}.json"
    assert kept.read_bytes() == (tmp_path / "profile.json").read_bytes()  # kept under the digest it is signed with
    assert json_digest(json.loads(kept.read_text())) == digest

    (tmp_path / "profile.json").unlink()
    with pytest.raises(GatePolicyViolation, match="budget"):
        privacy_op(run, tmp_path, ledger).execute(context(run, "data_privacy", upstream))
    assert not (tmp_path / "profile.json").exists(), "a blocked release must release nothing"
    assert [p.name for p in (tmp_path / "released").iterdir()] == [kept.name]


def test_a_new_release_replaces_the_profile_path_and_keeps_the_earlier_one(run, tmp_path):
    """A retraining releases before its model is promoted: ``profile_path`` then holds the new release, and the
    served version's (attested) release stays readable under its digest. A link at ``profile_path`` is
    replaced, not written through."""
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    upstream = integrity_upstream(run)
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    (tmp_path / "profile.json").symlink_to(outside)
    digests = []
    for _ in range(2):
        ctx = context(run, "data_privacy", upstream)
        privacy_op(run, tmp_path, ledger).execute(ctx)
        digests.append(ctx["ti"].pushed["data.privacy"]["metrics"]["profile_digest"])
    assert digests[0] != digests[1]  # fresh noise, another release
    assert outside.read_text() == "{}" and not (tmp_path / "profile.json").is_symlink()
    assert json_digest(json.loads((tmp_path / "profile.json").read_text())) == digests[1]
    for digest in digests:
        assert json_digest(json.loads((tmp_path / "released" / f"{digest[7:]}.json").read_text())) == digest
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()], "no partial file left behind"


@pytest.mark.parametrize("blocker", ["released", "profile-folder"])
def test_a_release_that_cannot_be_published_charges_nothing(run, tmp_path, blocker):
    """redteam8: the budget was charged before the copies were written; a ``released`` entry that is no folder
    (or a read-only one) lost the release with its 1.5 of 2.0, and the failure was retryable, so a retry charged
    again. Now the folders are checked first, and the error is not retried."""
    from mlgate.gates.data.privacy_ledger import SqlLedger

    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    upstream = integrity_upstream(run)
    (tmp_path / ("released" if blocker == "released" else "profiles")).write_text("not a folder")
    op = privacy_op(run, tmp_path, ledger)
    if blocker == "profile-folder":
        op.profile_path = str(tmp_path / "profiles" / "profile.json")
    with pytest.raises(GateConfigViolation, match="cannot be published there"):
        op.execute(context(run, "data_privacy", upstream))
    assert SqlLedger(ledger).history(upstream[("data_integrity", "data.integrity")]["subject"]["digest"]) == []


def test_a_profile_path_in_the_released_folder_cannot_replace_the_served_release(run, tmp_path):
    """redteam8: whoever triggers the training DAG sets ``profile_path``; set to the served release's kept copy,
    the newest release replaced it and the served version's monitoring refused every run (digest mismatch)."""
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    upstream = integrity_upstream(run)
    served = context(run, "data_privacy", upstream)
    privacy_op(run, tmp_path, ledger).execute(served)
    kept = tmp_path / "released" / f"{served['ti'].pushed['data.privacy']['metrics']['profile_digest'][7:]}.json"
    before = kept.read_bytes()
    op = privacy_op(run, tmp_path, ledger)
    op.profile_path = str(tmp_path / "profiles" / ".." / "released" / kept.name)
    with pytest.raises(GateConfigViolation, match="would replace a kept release"):
        op.execute(context(run, "data_privacy", upstream))
    assert kept.read_bytes() == before


def test_privacy_refuses_unverified_data(run, tmp_path):
    with pytest.raises(GateConfigViolation, match="refusing to release statistics"):
        privacy_op(run, tmp_path, f"sqlite:///{tmp_path / 'l.db'}").execute(context(run, "data_privacy"))


def fairness_op(run):
    return ModelFairnessGateOperator(task_id="model_fairness", data_callable="mlgate.demo.train:validation_data",
                                     data_path=str(run["data"]), seed=3, policy_path=str(run["policy"]))


def test_validation_loads_a_model_only_after_its_files_passed_the_artifact_scan(run):
    upstream = run_pipeline(run)
    with pytest.raises(GateConfigViolation, match="refusing to load .* model.artifact has not passed"):
        fairness_op(run).execute(context(run, "model_fairness", upstream))

    artifact_ctx = context(run, "model_artifact", upstream)
    ModelArtifactGateOperator(task_id="model_artifact", policy_path=str(run["policy"])).execute(artifact_ctx)
    scanned = artifact_ctx["ti"].pushed["model.artifact"]
    other_files = {**scanned, "subject": {**scanned["subject"], "digest": "sha256:" + "0" * 64}}
    with pytest.raises(GateConfigViolation, match="refusing to load"):
        fairness_op(run).execute(context(run, "model_fairness", {**upstream,
                                                                 ("model_artifact", "model.artifact"): other_files}))

    ctx = context(run, "model_fairness", {**upstream, ("model_artifact", "model.artifact"): scanned})
    fairness_op(run).execute(ctx)
    assert ctx["ti"].pushed["model.fairness"]["subject"]["digest"] == scanned["subject"]["digest"]
    # the model was loaded and evaluated only in an isolated child (ADR 0015), and the evidence says which
    assert ctx["ti"].pushed["model.fairness"]["metrics"]["sandbox"] in {"bwrap", "process"}
