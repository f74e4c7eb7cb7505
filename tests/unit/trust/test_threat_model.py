from __future__ import annotations

from datetime import date

import pytest
import yaml

from mlgate.core.errors import PolicyError
from mlgate.trust.compliance import load_compliance
from mlgate.trust.threat_model import CoverageStatus, Stride, ThreatModel, coverage, load_threat_model
from tests.conftest import ROOT

pytestmark = pytest.mark.unit

THREAT_MODEL = ROOT / "policies" / "threat-model.yaml"
COMPLIANCE = ROOT / "policies" / "compliance.yaml"
ALL_GATES = {
    "data.integrity", "data.pii", "data.expectations", "data.privacy", "code.static", "code.dependencies",
    "model.training", "model.artifact", "model.robustness", "model.privacy", "model.poisoning", "model.fairness",
    "model.explainability", "model.dos", "model.certification", "code.dynamic",
    "deploy.container", "deploy.config", "registry.promote", "monitor.drift",
    "monitor.confidence", "monitor.queries", "incident.respond",
}
PROMOTION_GATES = ALL_GATES - {"monitor.drift", "monitor.confidence", "monitor.queries", "incident.respond"}
TODAY = date(2026, 12, 1)


@pytest.fixture(scope="module")
def shipped() -> ThreatModel:
    return load_threat_model(THREAT_MODEL)


def by_category(cov):
    return {c.category: c for c in cov.categories}


def test_shipped_threat_model_models_every_stride_category_with_known_gates(shipped):
    assert set(shipped.categories) == set(Stride)
    named = {g for c in shipped.categories.values() for t in c.threats for g in t.mitigations}
    assert named <= ALL_GATES


def test_requiring_every_pre_promotion_gate_covers_every_category(shipped):
    cov = coverage(shipped, ALL_GATES, PROMOTION_GATES, TODAY)
    assert cov.ok
    assert {c.status for c in cov.categories} == {CoverageStatus.COVERED}


def test_a_gate_removed_from_the_pipeline_leaves_its_category_uncovered(shipped):
    cov = coverage(shipped, ALL_GATES - {"registry.promote"}, PROMOTION_GATES - {"registry.promote"}, TODAY)
    assert cov.uncovered == [Stride.REPUDIATION]
    threat = next(t for t in by_category(cov)[Stride.REPUDIATION].threats if t.threat.id == "unsigned-promotion")
    assert threat.status is CoverageStatus.UNCOVERED and threat.unknown == ("registry.promote",)


def test_a_gate_that_runs_but_is_not_required_is_reported_as_such(shipped):
    cov = by_category(coverage(shipped, ALL_GATES, PROMOTION_GATES - {"model.privacy", "data.privacy"}, TODAY))
    disclosure = {t.threat.id: t for t in cov[Stride.INFORMATION_DISCLOSURE].threats}
    assert cov[Stride.INFORMATION_DISCLOSURE].status is CoverageStatus.NOT_REQUIRED
    assert disclosure["membership-inference"].available == ("model.privacy", "data.privacy")
    assert disclosure["pii-leakage"].status is CoverageStatus.COVERED


ACCEPTED = {
    "version": 1,
    "categories": {
        **{c.value: {"description": "d", "threats": [{"id": "t", "title": "t", "mitigations": ["data.integrity"]}]}
           for c in Stride},
        "denial_of_service": {"description": "d", "threats": [{
            "id": "sponge", "title": "sponge examples",
            "accepted": {"owner": "ml-platform", "reason": "no latency gate yet", "expires": "2026-12-31"}}]},
    },
}


@pytest.mark.parametrize(("today", "status"), [(date(2026, 12, 31), CoverageStatus.ACCEPTED),
                                               (date(2027, 1, 1), CoverageStatus.UNCOVERED)],
                         ids=["on-expiry-day", "day-after-expiry"])
def test_an_accepted_risk_counts_only_until_it_expires(today, status):
    cov = by_category(coverage(ThreatModel.model_validate(ACCEPTED), ALL_GATES, {"data.integrity"}, today))
    assert cov[Stride.DENIAL_OF_SERVICE].status is status
    if status is CoverageStatus.UNCOVERED:
        assert "acceptance by ml-platform expired on 2026-12-31" in cov[Stride.DENIAL_OF_SERVICE].threats[0].note


BROKEN = [
    ("missing-category", lambda d: d["categories"].pop("repudiation"), "missing ['repudiation']"),
    ("unanswered-threat", lambda d: d["categories"]["spoofing"]["threats"][0].pop("mitigations"),
     "needs mitigating gate ids or an accepted risk"),
    ("acceptance-without-owner", lambda d: d["categories"]["denial_of_service"]["threats"][0]["accepted"].pop(
        "owner"), "categories.denial_of_service.threats.0.accepted.owner: Field required"),
    ("unknown-category", lambda d: d["categories"].update(spoofin={"description": "x", "threats": []}),
     "categories.spoofin"),
]


@pytest.mark.parametrize(("breaks", "message"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_an_invalid_threat_model_names_the_key_path(tmp_path, breaks, message):
    data = yaml.safe_load(yaml.safe_dump(ACCEPTED))
    breaks(data)
    path = tmp_path / "tm.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyError, match="invalid threat model") as caught:
        load_threat_model(path)
    assert message in str(caught.value)


def test_shipped_compliance_mapping_covers_every_gate_with_well_formed_ids():
    mapping = load_compliance(COMPLIANCE)
    assert set(mapping.gates) == ALL_GATES
    assert mapping.gates["model.robustness"].mitre_atlas == ("AML.T0043", "AML.T0015")
    assert mapping.gates["incident.respond"].nist_functions == ("MANAGE",)
    assert all(g.nist_ai_rmf for g in mapping.gates.values())


def test_a_mistyped_framework_id_is_refused(tmp_path):
    data = yaml.safe_load(COMPLIANCE.read_text())
    data["gates"]["model.robustness"]["mitre_atlas"] = ["AML.0043"]
    data["gates"]["model.privacy"]["owasp_ml_top10"] = ["ML11:2023"]
    path = tmp_path / "compliance.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyError, match=r"2 problem\(s\)") as caught:
        load_compliance(path)
    assert "gates.model.robustness.mitre_atlas.0" in str(caught.value)
