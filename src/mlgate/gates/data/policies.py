"""The policy section of ``data.pii``, apart from the gate: pydantic only.

Validating a policy (every CLI check does, for the policy digest) validates every section it holds;
kept here, that imports neither pyarrow nor the PII detectors (``core.policy.SECTIONS``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PII_TYPES = ("email", "phone", "us_ssn", "credit_card", "iban", "ip_address", "national_id", "person_name",
             "postal_address", "date_of_birth", "secret")
PiiType = Literal["email", "phone", "us_ssn", "credit_card", "iban", "ip_address", "national_id", "person_name",
                  "postal_address", "date_of_birth", "secret"]


class NerPolicy(BaseModel):
    """An optional named-entity model for free text (ADR 0052): a spaCy pipeline the user installs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spacy_model: str = Field(min_length=1, description="an installed spaCy pipeline package (en_core_web_sm) "
                             "or the path of one saved with nlp.to_disk")
    labels: dict[str, Literal["person_name", "postal_address"]] = Field(
        default_factory=lambda: {"PERSON": "person_name", "PER": "person_name"}, min_length=1,
        description="the model's entity labels and the type each one is")
    batch_size: int = Field(default=256, ge=1, le=10_000, description="cells per nlp.pipe batch")
    digest: str | None = Field(default=None, pattern=r"^(sha256|blake3):[0-9a-f]{64}$", description=(
        "the digest of the pipeline's folder (mlgate manifest digest), checked before it is loaded; required "
        "when spacy_model is a path"))

    @model_validator(mode="after")
    def _a_folder_is_pinned(self) -> NerPolicy:
        # A folder's contents can change after the policy is signed: swapped for a pipeline that still lists
        # PERSON but finds nobody, the scan passed, the new digest only recorded (redteam6b, ADR 0057).
        if is_path(self.spacy_model) and self.digest is None:
            raise ValueError(f"ner.spacy_model {self.spacy_model!r} names a folder: pin it with ner.digest "
                             "(the digest mlgate's manifest gives the folder)")
        return self


def is_path(model: str) -> bool:
    """A spaCy model named by a path rather than by an installed package's name."""
    return "/" in model or "\\" in model or model.startswith((".", "~"))


class PiiPolicy(BaseModel):
    """``allowed`` maps a column (``"*"``: every column) to the types it may hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed: dict[str, tuple[PiiType, ...]] = Field(default_factory=dict)
    action: Literal["block", "mask", "report"] = "block"
    types: tuple[PiiType, ...] = Field(default=PII_TYPES, min_length=1)
    hash_key_env: str = Field(default="MLGATE_PII_KEY", min_length=1)
    mask_with: Literal["hmac", "redact"] = Field(
        default="hmac", description="hmac: keyed tokens that keep joins possible; redact: the type's name")
    low_confidence: Literal["report", "block"] = Field(
        default="report", description="a value in a type's own format whose check fails (a PAN with a wrong "
        "holder letter): report: an INFO finding, counted apart; block: a violation like any other (ADR 0052)")
    ner: NerPolicy | None = Field(default=None, description="a spaCy model that finds names in free text; "
                                  "without it, names are found only in columns named for names")
    phone_regions: tuple[str, ...] = Field(
        default=(), description="regions (ISO 3166 codes, e.g. TR) whose numbers the data holds: a number "
        "without its country code is read as one of these, and a bare digit run valid in one of them is a phone "
        "number; empty: 28 common regions, and a bare digit run needs a word that names a phone")

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        import phonenumbers  # the numbering plans' authority; imported only when regions are named

        regions = tuple(region.upper() for region in regions)
        unknown = [region for region in regions if region not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"phone_regions {unknown} are not regions phonenumbers knows (ISO 3166 codes, e.g. TR)")
        return regions

    def allows(self, column: str, pii_type: str) -> bool:
        return pii_type in self.allowed.get(column, ()) or pii_type in self.allowed.get("*", ())
