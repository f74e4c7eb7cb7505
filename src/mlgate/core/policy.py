"""The policy: one YAML file that sets every gate's thresholds and what promotion requires.

Validated with pydantic so a typo never silently turns a gate off: unknown keys and gate ids are errors,
and every error names the key path, what was expected and what was found. Each gate's section is
validated by the model its gate module defines (``SECTIONS``), imported only when a policy is loaded, so
importing the policy (and the operators, and DAG files) stays light. The policy digest — canonical JSON
of the validated policy — goes into each GateResult so promotion refuses evidence from another policy.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import reprlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from mlgate.core.errors import PolicyError
from mlgate.core.isolation import SandboxPolicy
from mlgate.core.policy_exceptions import PolicyException
from mlgate.core.safe_yaml import load_yaml

# gate id -> "module:Model" validating its section of ``gates``
SECTIONS: dict[str, str] = {
    "data.integrity": "mlgate.core.policy:IntegrityPolicy",
    "data.expectations": "mlgate.core.policy:ExpectationsPolicy",
    "data.pii": "mlgate.gates.data.policies:PiiPolicy",
    "data.privacy": "mlgate.gates.data.privacy:PrivacyPolicy",
    "code.static": "mlgate.gates.code.bandit_scan:StaticPolicy",
    "code.dependencies": "mlgate.gates.code.trivy:TrivyPolicy",
    "code.dynamic": "mlgate.gates.code.dynamic:DynamicPolicy",
    "model.training": "mlgate.core.policy:TrainingPolicy",
    "model.artifact": "mlgate.gates.model.policies:ArtifactPolicy",
    "model.robustness": "mlgate.gates.model.policies:RobustnessPolicy",
    "model.privacy": "mlgate.gates.model.policies:MembershipPolicy",
    "model.poisoning": "mlgate.gates.model.policies:PoisoningPolicy",
    "model.fairness": "mlgate.gates.model.policies:FairnessPolicy",
    "model.explainability": "mlgate.gates.model.policies:ExplainabilityPolicy",
    "model.dos": "mlgate.gates.model.policies:DosPolicy",
    "model.certification": "mlgate.gates.model.policies:CertificationPolicy",
    "deploy.container": "mlgate.gates.code.trivy:TrivyPolicy",
    "deploy.config": "mlgate.gates.code.trivy:TrivyPolicy",
    "monitor.drift": "mlgate.gates.monitor.policies:DriftPolicy",
    "monitor.confidence": "mlgate.gates.monitor.policies:ConfidencePolicy",
    "monitor.queries": "mlgate.gates.monitor.policies:QueriesPolicy",
    "incident.respond": "mlgate.gates.monitor.policies:IncidentPolicy",
}
KNOWN_GATES = (*SECTIONS, "registry.promote")


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
    max_dp_epsilon: float | None = Field(
        default=None, gt=0, allow_inf_nan=False,
        description="when set, the model must be trained with DP-SGD at a target ε no larger than this")


class PromotionPolicy(_Strict):
    model_name: str = Field(min_length=1)
    alias: str = Field(default="champion", pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    required_gates: tuple[str, ...] = Field(min_length=1)
    max_evidence_age_hours: float = Field(default=24.0, gt=0)
    functionaries: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="gate id (or '*') -> key ids of trusted keys or inline PEM public keys allowed to sign "
                    "that gate's results (in-toto layout semantics); empty: the trusted keys sign every gate. "
                    "Never a key file's path: the policy's digest would pin the path, not the key")

    @field_validator("required_gates")
    @classmethod
    def _known(cls, gates: tuple[str, ...]) -> tuple[str, ...]:
        return _known_gates(gates)

    @field_validator("functionaries")
    @classmethod
    def _functionaries(cls, steps: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        _known_gates([g for g in steps if g != "*"])
        empty = sorted(g for g, keys in steps.items() if not keys)
        if empty:
            raise ValueError(f"functionaries of {empty} name no key; a step nobody may sign never passes")
        for gate, keys in steps.items():
            for key in keys:
                if not (_KEYID.fullmatch(key) or _PUBLIC_PEM.fullmatch(key.strip())):
                    raise ValueError(f"functionaries of {gate}: {key[:40]!r} is neither a key id (64 hex) nor an "
                                     "inline PEM public key; a key file's path is refused, because the policy's "
                                     "digest pins the path and not the key, so whoever can write beside the policy "
                                     "could swap the functionary")
        return steps


_KEYID = re.compile(r"[0-9a-f]{64}")
_PUBLIC_PEM = re.compile(r"-----BEGIN PUBLIC KEY-----[A-Za-z0-9+/=\s]+-----END PUBLIC KEY-----")


def _known_gates(gates: Any) -> Any:
    unknown = [g for g in gates if g not in KNOWN_GATES]
    if unknown:
        raise ValueError(f"unknown gate id(s) {unknown}; known gates are {list(KNOWN_GATES)}")
    return gates


def section_model(gate: str) -> type[BaseModel]:
    module, _, name = SECTIONS[gate].partition(":")
    return getattr(importlib.import_module(module), name)


class Policy(_Strict):
    # a dumped policy (``promotion_block``) validates again, as the isolated child does with it
    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True)

    version: Literal[1]
    promotion_block: PromotionPolicy | None = Field(
        default=None, alias="promotion", description="what promotion requires; data checks need none")
    gates: dict[str, dict[str, Any]] = Field(default_factory=dict)
    exceptions: tuple[PolicyException, ...] = ()
    sandbox: SandboxPolicy = Field(default_factory=SandboxPolicy,
                                   description="where the model validation gates run model code (ADR 0015)")
    source: str = Field(default="", exclude=True, description="the file it was loaded from")
    _sections: dict[str, BaseModel] = PrivateAttr(default_factory=dict)

    @field_validator("gates")
    @classmethod
    def _known_sections(cls, gates: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return _known_gates(gates)

    @property
    def promotion(self) -> PromotionPolicy:
        """The ``promotion:`` block; ``PolicyError`` for a policy written for checks alone."""
        if self.promotion_block is None:
            raise PolicyError(f"{self.source}: promotion: expected a block with model_name and required_gates "
                              "(promotion, incident response and monitoring need one), found none")
        return self.promotion_block

    def section(self, gate: str) -> Any:
        """The validated section of ``gate``; its defaults when the policy has none."""
        if gate not in self._sections:
            try:
                self._sections[gate] = section_model(gate).model_validate(self.gates.get(gate, {}))
            except ValidationError as exc:
                raise _policy_error(self.source, exc, prefix=("gates", gate)) from None
        return self._sections[gate]

    @property
    def digest(self) -> str:
        promotion = self.promotion_block.model_dump(mode="json") if self.promotion_block else None
        canonical = {"version": self.version, "promotion": promotion,
                     "gates": {g: self.section(g).model_dump(mode="json") for g in sorted(self.gates)},
                     "exceptions": [e.model_dump(mode="json") for e in self.exceptions],
                     "sandbox": self.sandbox.model_dump(mode="json")}
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    def resolve(self, relative: str) -> Path:
        """A path from the policy, resolved against the policy file's directory."""
        path = Path(relative)
        return path if path.is_absolute() else Path(self.source).parent / path

    def expectations(self) -> ExpectationsPolicy:
        if "data.expectations" not in self.gates:
            raise PolicyError(f"{self.source}: gates.data.expectations: expected a section with a 'suite' "
                              "path, found none")
        return self.section("data.expectations")


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxstring = 2, 4, 4, 4, 100


def describe_error(error: Any, prefix: tuple[str, ...] = ()) -> str:
    """One pydantic error as ``key.path: expectation; found value``; the value's repr is bounded while it
    is built (never expand a shared, deeply nested input only to truncate it)."""
    path = ".".join(str(part) for part in (*prefix, *error["loc"])) or "(top level)"
    if error["type"] == "value_error" and isinstance(error.get("input"), dict | list | tuple):
        return f"{path}: {error['msg'].rstrip('.')}"  # our validators name what they found in a container
    found = "nothing" if error["type"] == "missing" else _SHORT.repr(error.get("input"))[:120]
    return f"{path}: {error['msg'].rstrip('.')}; found {found}"


def _policy_error(source: str, exc: ValidationError, prefix: tuple[str, ...] = ()) -> PolicyError:
    problems = "\n  ".join(describe_error(e, prefix) for e in exc.errors())
    return PolicyError(f"{source}: invalid policy ({exc.error_count()} problem(s)):\n  {problems}")


def parse_policy(data: Any, source: str = "<policy>") -> Policy:
    """Validate the whole policy, every gate section included, reporting every problem at once."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: expected a mapping at the top level, found {type(data).__name__}")
    problems: list[str] = []
    try:
        policy = Policy.model_validate({**data, "source": source})
    except ValidationError as exc:
        problems += [describe_error(e) for e in exc.errors()]
        policy = None
    gates = data.get("gates")
    for gate, section in (gates.items() if isinstance(gates, dict) else ()):
        if gate in SECTIONS:  # an unknown id is one of the problems above
            try:
                section_model(gate).model_validate({} if section is None else section)
            except ValidationError as exc:
                problems += [describe_error(e, ("gates", gate)) for e in exc.errors()]
    if problems or policy is None:
        raise PolicyError(f"{source}: invalid policy ({len(problems)} problem(s)):\n  " + "\n  ".join(problems))
    return policy


def load_policy(path: str | Path) -> Policy:
    """The policy file at ``path``: size-capped and alias-free YAML (``safe_yaml``), then validated."""
    return parse_policy(load_yaml(path, "policy file"), source=str(path))
