"""The policy: one YAML file that sets every gate's thresholds and what promotion requires.

Validated with pydantic so a typo never silently turns a gate off: unknown keys are errors, and every
error names the key path, what was expected and what was found. The policy digest (canonical JSON of
the validated policy) is written into each GateResult so promotion can refuse evidence produced under
another policy.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mlgate.core.errors import PolicyError

KNOWN_GATES = (
    "data.integrity",
    "data.expectations",
    "model.training",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntegrityPolicy(_Strict):
    algorithm: Literal["sha256", "blake3"] = "sha256"


class ExpectationsPolicy(_Strict):
    suite: str = Field(description="path of a GX 1.x suite JSON, relative to the policy file")
    max_failed_expectations: int = Field(default=0, ge=0)


class TrainingPolicy(_Strict):
    require: tuple[Literal["params", "data_digests", "code_version", "seed", "library_versions"], ...] = (
        "params", "data_digests", "code_version", "seed", "library_versions",
    )


class GatesPolicy(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    integrity: IntegrityPolicy = Field(default_factory=IntegrityPolicy, alias="data.integrity")
    expectations: ExpectationsPolicy | None = Field(default=None, alias="data.expectations")
    training: TrainingPolicy = Field(default_factory=TrainingPolicy, alias="model.training")


class PromotionPolicy(_Strict):
    model_name: str = Field(min_length=1)
    alias: str = Field(default="champion", pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    required_gates: tuple[str, ...] = Field(min_length=1)
    max_evidence_age_hours: float = Field(default=24.0, gt=0)

    @field_validator("required_gates")
    @classmethod
    def _known(cls, gates: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [g for g in gates if g not in KNOWN_GATES]
        if unknown:
            raise ValueError(f"unknown gate id(s) {unknown}; known gates are {list(KNOWN_GATES)}")
        return gates


class Policy(_Strict):
    version: Literal[1]
    promotion: PromotionPolicy
    gates: GatesPolicy = Field(default_factory=GatesPolicy)
    source: str = Field(default="", exclude=True, description="the file it was loaded from")

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True,
                               separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def resolve(self, relative: str) -> Path:
        """A path from the policy, resolved against the policy file's directory."""
        path = Path(relative)
        return path if path.is_absolute() else Path(self.source).parent / path

    def expectations(self) -> ExpectationsPolicy:
        if self.gates.expectations is None:
            raise PolicyError(f"{self.source}: gates.data.expectations: expected a section with a 'suite' "
                              "path, found none")
        return self.gates.expectations


def _describe(error: dict[str, Any]) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "(top level)"
    found = error.get("input")
    found_text = "nothing" if error["type"] == "missing" else f"{found!r}"[:120]
    return f"{path}: {error['msg'].rstrip('.')}; found {found_text}"


def parse_policy(data: Any, source: str = "<policy>") -> Policy:
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: expected a mapping at the top level, found {type(data).__name__}")
    try:
        return Policy.model_validate({**data, "source": source})
    except ValidationError as exc:
        problems = "\n  ".join(_describe(e) for e in exc.errors())
        raise PolicyError(f"{source}: invalid policy ({exc.error_count()} problem(s)):\n  {problems}") from None


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from None
    return parse_policy(data, source=str(path))
