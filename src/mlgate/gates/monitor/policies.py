"""The policy sections of the monitoring and incident gates, apart from the gates: pydantic only.

Validating a policy (every CLI check does, for the policy digest) validates every section it holds;
kept here, that imports no gate, no numpy and nothing of ``mlgate.trust`` (``core.policy.SECTIONS``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ReferenceTrust = Literal["attested", "unverified"]
REFERENCE_FIELD = Field(
    default="attested", description="attested: the operators accept as the training reference only the DP "
    "profile whose digest the served version's verified attestation records (data.privacy); unverified: any "
    "reference file, a sketch or sample included, recorded as unverified (ADR 0060)")


class DriftPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(default=0.001, gt=0, lt=1, description="family-wise level of the tests: a healthy "
                         "window drifts with probability at most about alpha")
    correction: Literal["bonferroni", "holm", "bh"] = "holm"
    min_wasserstein: float = Field(default=0.05, ge=0, description="smallest numeric effect that counts, in "
                                   "reference standard deviations")
    min_total_variation: float = Field(default=0.02, ge=0, le=1, description="smallest categorical effect")
    severe_wasserstein: float = Field(default=0.5, gt=0, description="a numeric effect that blocks at once")
    severe_total_variation: float = Field(default=0.2, gt=0, le=1)
    demote_after: int = Field(default=2, ge=1, description="drifted windows among the last of_last that block")
    of_last: int = Field(default=3, ge=1)
    min_rows: int = Field(default=100, ge=2)
    max_accuracy_drop: float = Field(default=0.05, ge=0, le=1)
    bins: int = Field(default=50, ge=2, le=200, description="reference-quantile groups for the effects and PSI")
    columns: tuple[str, ...] | None = None
    reference: ReferenceTrust = REFERENCE_FIELD

    @model_validator(mode="after")
    def _persistence(self) -> DriftPolicy:
        if self.demote_after > self.of_last:
            raise ValueError(f"demote_after={self.demote_after} exceeds of_last={self.of_last}")
        return self


class ConfidencePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    low_confidence: float = Field(default=0.6, gt=0, le=1, description="a prediction below this is 'low'")
    alpha: float = Field(default=0.01, gt=0, lt=1)
    min_predictions: int = Field(default=50, ge=1)


class QueriesPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_volume_z: float = Field(default=10.0, gt=0)
    prada_delta: float = Field(default=0.7, gt=0, lt=1, description="PRADA flags a client whose distances' "
                               "Shapiro-Wilk W is below this (the shipped policy's value, measured on natural clients)")
    prada_min_queries: int = Field(default=30, ge=3)
    prada_max_queries: int = Field(default=2000, ge=3, description="the latest queries a client is tested on")
    ood_quantile: float = Field(default=0.99, gt=0.5, lt=1, description="reference quantile of Σz² beyond "
                                "which a query is out of distribution (natural share 1 - ood_quantile)")
    ood_alpha: float = Field(default=0.001, gt=0, lt=1, description="family-wise level over the clients seen")
    ood_margin: float = Field(default=3.0, ge=1, description="a client is tested against this many times the "
                              "natural OOD share, so that a natural one a little above it is not flagged")
    sybil_min_ood: int = Field(default=3, ge=1, description="OOD queries a key needs to join the pooled group")
    crowd_min_share: float = Field(default=1.0, gt=0, le=1, description="OOD share (and at least one OOD query) a "
                                   "key needs to join the crowd, whose summed OOD count is tested against its "
                                   "exact null over every key (ADR 0062)")
    columns: tuple[str, ...] | None = None
    reference: ReferenceTrust = REFERENCE_FIELD


MonitorGate = Literal["monitor.drift", "monitor.confidence", "monitor.queries"]


class IncidentPolicy(BaseModel):
    """Policy section ``gates.incident.respond``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    demote_on: tuple[MonitorGate, ...] = Field(
        default=("monitor.drift", "monitor.confidence"),
        description="gates whose alert demotes the served version and requests retraining; alerts of the "
                    "others (extraction-like clients target the API, not the model's quality) are recorded "
                    "and notified only")
    max_candidates: int = Field(default=5, ge=1, description="earlier versions evaluated, newest first")
    max_evidence_age_hours: float | None = Field(
        default=None, gt=0, description="how old a restored version's evidence may be (default: promotion's)")
    experiment: str = Field(default="mlgate-incidents", min_length=1)
