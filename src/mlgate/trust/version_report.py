"""The scorecard of one model version, from what MLflow holds: its gate results, the model's decision
history, the threat-model coverage and compliance view of the policy, and the images its gates logged.

The threat model and the compliance mapping default to ``threat-model.yaml`` and ``compliance.yaml``
beside the policy file; when absent, those sections are empty. Coverage counts ``registry.promote`` as
required: promotion itself always runs it.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlgate.core.errors import GateInputError
from mlgate.core.policy import KNOWN_GATES, Policy
from mlgate.core.results import GateResult
from mlgate.trust.attestation import AttestationError
from mlgate.trust.attestation_store import verify_version
from mlgate.trust.audit import read_decisions
from mlgate.trust.compliance import load_compliance
from mlgate.trust.keys import keyring_from_env
from mlgate.trust.promotion import GATE as PROMOTE_GATE
from mlgate.trust.registry import call, download_evidence, mlflow_errors
from mlgate.trust.scorecard import IMAGE_TYPES, render_scorecard
from mlgate.trust.threat_model import Coverage, coverage, load_threat_model

if TYPE_CHECKING:
    from mlflow import MlflowClient

ARTIFACT = "scorecard.html"
THREAT_MODEL = "threat-model.yaml"
COMPLIANCE = "compliance.yaml"


def policy_coverage(policy: Policy, threat_model: Path) -> Coverage:
    """How the threat model is covered by the gates mlgate implements and the gates this policy requires."""
    required = {*policy.promotion.required_gates, PROMOTE_GATE}
    return coverage(load_threat_model(threat_model), set(KNOWN_GATES), required, datetime.now(UTC).date())


def _images(client: MlflowClient, run_id: str, directory: Path) -> dict[str, Path]:
    """Every image a gate logged under ``gates/<gate>/``, downloaded; named ``<gate>: <file>``."""
    images: dict[str, Path] = {}
    with mlflow_errors("downloading gate images", client.tracking_uri):
        pending = ["gates"]
        while pending:
            for item in client.list_artifacts(run_id, pending.pop()):
                if item.is_dir:
                    pending.append(item.path)
                elif Path(item.path).suffix.lower() in IMAGE_TYPES:
                    gate = Path(item.path).parent.name
                    images[f"{gate}: {Path(item.path).name}"] = Path(client.download_artifacts(run_id, item.path,
                                                                                              str(directory)))
    return dict(sorted(images.items()))


def attestation_problems(client: MlflowClient, policy: Policy, name: str, version: str) -> tuple[str, ...]:
    """Why the version's attestation does not verify now against the environment's trusted keys (none when
    it does): the scorecard's verdict comes from this, never from the store's loose evidence."""
    try:
        verify_version(client, policy, name, version, keyring_from_env().trusted_keys(), datetime.now(UTC))
    except AttestationError as exc:
        return exc.reasons
    except GateInputError as exc:
        return (str(exc),)
    return ()


def version_scorecard(client: MlflowClient, policy: Policy, name: str, version: str, *,
                      threat_model: Path | None = None, compliance: Path | None = None) -> str:
    """The scorecard HTML of ``name``/``version``; PROMOTABLE only when its attestation verifies."""
    model_version = call(client, f"reading model version {name}/{version}",
                         lambda: client.get_model_version(name, str(version)))
    run_id = model_version.run_id
    evidence = download_evidence(client, run_id) if run_id else {}
    problems = attestation_problems(client, policy, name, version)
    decisions = [r.to_dict() for r in reversed(read_decisions(client, name))]
    threat_model = threat_model or policy.resolve(THREAT_MODEL)
    compliance = compliance or policy.resolve(COMPLIANCE)
    with tempfile.TemporaryDirectory() as tmp:
        return render_scorecard(
            name, str(version), [r for r in evidence.values() if isinstance(r, GateResult)], decisions,
            policy_coverage(policy, threat_model) if threat_model.exists() else Coverage(()),
            load_compliance(compliance).gates if compliance.exists() else {},
            _images(client, run_id, Path(tmp)) if run_id else {},
            required_gates=policy.promotion.required_gates, attestation_problems=problems,
        )


def log_scorecard(client: MlflowClient, name: str, version: str, html: str) -> str:
    """Log ``scorecard.html`` on the version's run; returns the run id."""
    run_id = call(client, f"reading model version {name}/{version}",
                  lambda: client.get_model_version(name, str(version))).run_id
    with mlflow_errors("logging the scorecard", client.tracking_uri), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ARTIFACT
        path.write_text(html)
        client.log_artifact(run_id, str(path))
    return run_id


def publish_scorecard(client: MlflowClient, policy: Policy, name: str, version: str) -> str:
    """Render the version's scorecard with the defaults beside the policy and log it; returns the run id."""
    return log_scorecard(client, name, version, version_scorecard(client, policy, name, version))
