"""The request body a model accepts, derived from its MLflow signature and its training data's profile.

One pydantic model per served version: the signature gives the columns, their types and which are
required; the profile (``--profile``: a reference profile or DP profile JSON, or a sample table) narrows
numbers to the training span widened by ``range_slack`` of it on each side and strings to the categories
seen in training (unless the profile has an "other" cell). NaN and infinities are refused, extra columns
too. The same model is the OpenAPI schema of ``POST /predict``, so the schema cannot drift from what is
enforced. Models with tensor signatures, or none, are refused at start: their inputs cannot be checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, create_model

from mlgate.core.errors import GateInputError
from mlgate.gates.monitor.drift import OTHER, ReferenceProfile

if TYPE_CHECKING:
    import pandas as pd

MAX_STRING = 1024
_INT_BOUNDS = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_DTYPES = {"double": "float64", "float": "float32", "long": "int64", "integer": "int32", "boolean": "bool",
           "string": "object"}


class InputRejected(Exception):
    """A request body that does not fit the model: ``status`` 413 (too many rows) or 422, ``fields`` named."""

    def __init__(self, status: int, fields: list[dict[str, str]]) -> None:
        self.status, self.fields = status, fields
        super().__init__("; ".join(f"{f['field']}: {f['message']}" for f in fields))


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool


def signature_columns(model: Any) -> list[Column]:
    """The named, typed columns of the model's input signature; a model whose inputs cannot be checked is refused."""
    schema = model.metadata.get_input_schema()
    if schema is None:
        raise GateInputError("the model has no input signature: mlgate serve refuses inputs it cannot validate "
                             "(log the model with a signature)")
    if schema.is_tensor_spec() or not schema.has_input_names():
        raise GateInputError("the model's signature is a tensor or unnamed: mlgate serve validates named columns")
    columns = []
    for spec in schema.inputs:
        kind = getattr(spec.type, "name", str(spec.type))
        if kind not in _DTYPES:
            raise GateInputError(f"signature column {spec.name!r}: type {kind} is not servable "
                                 f"(supported: {sorted(_DTYPES)})")
        columns.append(Column(str(spec.name), kind, bool(getattr(spec, "required", True))))
    return columns


def _annotation(column: Column, profile: ReferenceProfile | None, slack: float) -> Any:
    constraints: dict[str, Any] = {"strict": True}
    if column.type in ("double", "float"):
        base, constraints["allow_inf_nan"] = float, False
    elif column.type in _INT_BOUNDS:
        base = int
        constraints["ge"], constraints["le"] = _INT_BOUNDS[column.type]
    elif column.type == "boolean":
        base = bool
    else:
        base, constraints["max_length"] = str, MAX_STRING
        categories = (profile.categorical.get(column.name) if profile else None) or {}
        if categories and OTHER not in categories:
            return Literal[tuple(sorted(categories))]  # type: ignore[misc]
    if profile and column.name in profile.numeric and base in (int, float):
        cuts = profile.numeric[column.name][0]
        span = float(cuts[-1] - cuts[0]) or max(abs(float(cuts[0])), 1.0)
        low, high = float(cuts[0]) - slack * span, float(cuts[-1]) + slack * span
        if base is int:  # an integer column's bounds are integers, rounded outwards (DP cuts are fractional)
            low, high = math.floor(low), math.ceil(high)
        constraints["ge"] = max(low, constraints.get("ge", low))
        constraints["le"] = min(high, constraints.get("le", high))
    return Annotated[base, Field(**constraints)]


class InputSchema:
    """Validates ``{"instances": [{column: value, ...}, ...]}`` and turns it into a typed DataFrame."""

    def __init__(self, columns: list[Column], profile: ReferenceProfile | None, slack: float, max_batch: int):
        self.columns = columns
        fields = {f"c{i}": (_annotation(c, profile, slack) if c.required else
                            _annotation(c, profile, slack) | None,
                            Field(alias=c.name) if c.required else Field(None, alias=c.name))
                  for i, c in enumerate(columns)}
        instance = create_model("Instance", __config__=ConfigDict(extra="forbid"), **fields)
        self.model = create_model("PredictRequest", __config__=ConfigDict(extra="forbid"),
                                  instances=(list[instance], Field(min_length=1, max_length=max_batch)))

    def parse(self, body: bytes) -> list[dict[str, Any]]:
        try:
            request = self.model.model_validate_json(body)
        except ValidationError as exc:
            errors = exc.errors(include_input=False, include_url=False)
            status = 413 if any(e["type"] == "too_long" and e["loc"] == ("instances",) for e in errors) else 422
            raise InputRejected(status, [{"field": _where(e["loc"]), "message": e["msg"]} for e in errors[:20]]
                                ) from None
        return [row.model_dump(by_alias=True) for row in request.instances]

    def frame(self, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """One typed array per column (the values are already validated): ``from_records`` + ``astype`` cost
        five times as much, per request."""
        import numpy as np
        import pandas as pd

        return pd.DataFrame({c.name: np.array([row[c.name] for row in rows],
                                              dtype=_DTYPES[c.type] if c.required else object)
                             for c in self.columns})

    def openapi(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The request body's schema and the component schemas it refers to."""
        schema = self.model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        return schema, schema.pop("$defs", {})


def _where(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def load_profile(path: str | None) -> ReferenceProfile | None:
    """A reference or DP profile JSON, or a sample table profiled here; ``None`` without a path."""
    if not path:
        return None
    from mlgate.gates.monitor.drift import profile_from_sample
    from mlgate.gates.monitor.monitoring import load_reference

    reference = load_reference(path)
    return reference if isinstance(reference, ReferenceProfile) else profile_from_sample(reference)
