"""The STRIDE threat model as code: each category names its AI-specific threats and what answers them.

A threat is answered by the gates that mitigate it, or by an accepted risk with an owner, a reason and
an expiry date. ``coverage`` says, per category, whether the promotion policy actually *requires* a
mitigating gate, so a threat model cannot claim protection the pipeline does not enforce, and an
acceptance cannot silently outlive its expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlgate.core.yaml_models import load_yaml_model


class Stride(StrEnum):
    SPOOFING = "spoofing"
    TAMPERING = "tampering"
    REPUDIATION = "repudiation"
    INFORMATION_DISCLOSURE = "information_disclosure"
    DENIAL_OF_SERVICE = "denial_of_service"
    ELEVATION_OF_PRIVILEGE = "elevation_of_privilege"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AcceptedRisk(_Strict):
    owner: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    expires: date


class Threat(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    title: str = Field(min_length=1)
    mitigations: tuple[str, ...] = ()
    accepted: AcceptedRisk | None = None

    @model_validator(mode="after")
    def _answered(self) -> Threat:
        if not self.mitigations and self.accepted is None:
            raise ValueError("a threat needs mitigating gate ids or an accepted risk (owner, reason, expires)")
        return self


class Category(_Strict):
    description: str = Field(min_length=1)
    threats: tuple[Threat, ...] = Field(min_length=1)


class ThreatModel(_Strict):
    version: Literal[1]
    categories: dict[Stride, Category]

    @model_validator(mode="after")
    def _every_category(self) -> ThreatModel:
        missing = [str(c) for c in Stride if c not in self.categories]
        if missing:
            raise ValueError(f"every STRIDE category must be modelled; missing {missing}")
        return self


def load_threat_model(path: str | Path) -> ThreatModel:
    return load_yaml_model(path, ThreatModel, "threat model")


class CoverageStatus(StrEnum):
    """Ordered from worst to best: a category is as covered as its least covered threat."""

    UNCOVERED = "uncovered"
    NOT_REQUIRED = "mitigated-not-required"
    ACCEPTED = "accepted"
    COVERED = "covered"

    @property
    def rank(self) -> int:
        return list(CoverageStatus).index(self)


@dataclass(frozen=True)
class ThreatCoverage:
    threat: Threat
    status: CoverageStatus
    required: tuple[str, ...]  # mitigating gates the promotion policy requires
    available: tuple[str, ...]  # mitigating gates that exist but promotion does not require
    unknown: tuple[str, ...]  # mitigating gate ids no gate implements
    note: str


@dataclass(frozen=True)
class CategoryCoverage:
    category: Stride
    status: CoverageStatus
    threats: tuple[ThreatCoverage, ...]


@dataclass(frozen=True)
class Coverage:
    categories: tuple[CategoryCoverage, ...]

    @property
    def uncovered(self) -> list[Stride]:
        return [c.category for c in self.categories if c.status is CoverageStatus.UNCOVERED]

    @property
    def ok(self) -> bool:
        return not self.uncovered


def _threat_coverage(threat: Threat, available: set[str], required: set[str], today: date) -> ThreatCoverage:
    req = tuple(g for g in threat.mitigations if g in required and g in available)
    avail = tuple(g for g in threat.mitigations if g in available and g not in required)
    unknown = tuple(g for g in threat.mitigations if g not in available)
    acceptance = threat.accepted
    if req:
        status, note = CoverageStatus.COVERED, f"required by promotion: {', '.join(req)}"
    elif acceptance and acceptance.expires >= today:
        status = CoverageStatus.ACCEPTED
        note = f"accepted by {acceptance.owner} until {acceptance.expires}: {acceptance.reason}"
    elif avail:
        status, note = CoverageStatus.NOT_REQUIRED, f"gates exist but promotion does not require them: " \
                                                    f"{', '.join(avail)}"
    else:
        status = CoverageStatus.UNCOVERED
        note = (f"acceptance by {acceptance.owner} expired on {acceptance.expires}" if acceptance else
                f"no mitigating gate is implemented ({', '.join(unknown)})")
    return ThreatCoverage(threat, status, req, avail, unknown, note)


def coverage(model: ThreatModel, available_gates: set[str], required_gates: set[str], today: date) -> Coverage:
    """Per STRIDE category: covered, accepted (unexpired), mitigated-but-not-required, or uncovered."""
    categories = []
    for category in Stride:
        threats = tuple(_threat_coverage(t, available_gates, required_gates, today)
                        for t in model.categories[category].threats)
        worst = min((t.status for t in threats), key=lambda s: s.rank)
        categories.append(CategoryCoverage(category, worst, threats))
    return Coverage(tuple(categories))
