"""Which framework requirements each gate produces evidence for: NIST AI RMF, EU AI Act Art. 15,
OWASP ML Security Top 10 (2023) and MITRE ATLAS.

Identifiers are validated by shape so a typo cannot pass as a mapping; ``unverified`` lists the ones
that could not be checked against the framework's own text and must be reviewed before an audit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from mlgate.core.yaml_models import load_yaml_model

NistRef = Annotated[str, StringConstraints(pattern=r"^(GOVERN|MAP|MEASURE|MANAGE)( \d+\.\d+)?$")]
OwaspId = Annotated[str, StringConstraints(pattern=r"^ML(0[1-9]|10):2023$")]
AtlasId = Annotated[str, StringConstraints(pattern=r"^AML\.T\d{4}(\.\d{3})?$")]
Art15Aspect = Literal["accuracy", "robustness", "cybersecurity"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GateCompliance(_Strict):
    nist_ai_rmf: tuple[NistRef, ...] = ()
    eu_ai_act_art15: tuple[Art15Aspect, ...] = ()
    owasp_ml_top10: tuple[OwaspId, ...] = ()
    mitre_atlas: tuple[AtlasId, ...] = ()
    unverified: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _unverified_are_mapped(self) -> GateCompliance:
        mapped = {*self.nist_ai_rmf, *self.owasp_ml_top10, *self.mitre_atlas}
        stray = [i for i in self.unverified if i not in mapped]
        if stray:
            raise ValueError(f"'unverified' names ids this gate does not map: {stray}")
        return self

    @property
    def nist_functions(self) -> tuple[str, ...]:
        order = ("GOVERN", "MAP", "MEASURE", "MANAGE")
        used = {ref.split(" ")[0] for ref in self.nist_ai_rmf}
        return tuple(f for f in order if f in used)


class ComplianceMap(_Strict):
    version: Literal[1]
    sources: dict[str, str] = Field(description="framework key -> the edition the ids come from")
    gates: dict[str, GateCompliance]


def load_compliance(path: str | Path) -> ComplianceMap:
    return load_yaml_model(path, ComplianceMap, "compliance mapping")
