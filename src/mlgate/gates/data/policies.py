"""The policy section of ``data.pii``, apart from the gate: pydantic only.

Validating a policy (every CLI check does, for the policy digest) validates every section it holds;
kept here, that imports neither pyarrow nor the PII detectors (``core.policy.SECTIONS``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PII_TYPES = ("email", "phone", "us_ssn", "credit_card", "iban", "ip_address", "national_id", "person_name",
             "postal_address", "date_of_birth", "secret")
PiiType = Literal["email", "phone", "us_ssn", "credit_card", "iban", "ip_address", "national_id", "person_name",
                  "postal_address", "date_of_birth", "secret"]


class PiiPolicy(BaseModel):
    """``allowed`` maps a column (``"*"``: every column) to the types it may hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: dict[str, tuple[PiiType, ...]] = Field(default_factory=dict)
    action: Literal["block", "mask", "report"] = "block"
    types: tuple[PiiType, ...] = Field(default=PII_TYPES, min_length=1)
    hash_key_env: str = Field(default="MLGATE_PII_KEY", min_length=1)
    mask_with: Literal["hmac", "redact"] = Field(
        default="hmac", description="hmac: keyed tokens that keep joins possible; redact: the type's name")

    def allows(self, column: str, pii_type: str) -> bool:
        return pii_type in self.allowed.get(column, ()) or pii_type in self.allowed.get("*", ())
