"""The data contract as a per-column model: what ``code.dynamic`` generates inputs from.

A Great Expectations suite (the JSON in ``expectations/``) says what one valid row looks like: a column's
type, range, allowed set, pattern, length and whether it may be null. ``parse_contract`` turns the
expectations that bind a single row into a ``ColumnContract`` per column, read from the suite's JSON
without importing GX. Table-level expectations (row counts, means) do not bind the rows a callable is
given, and an expectation with ``mostly`` below 1 allows exceptions, so neither narrows the inputs; they
are listed as ``unmodelled`` in the evidence rather than silently dropped.

A suite rarely states every column's type; ``dtypes`` (the pandas dtypes of a sample of the pipeline's
data) fills the gaps, then the kinds of the allowed values and of the bounds; a column still untyped is
text. ``violations`` names how each column can be broken: the out-of-contract cases the code must reject.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from mlgate.core.errors import GateInputError

Kind = Literal["int", "float", "str", "bool"]
TYPE_NAMES: dict[str, Kind] = {
    **dict.fromkeys(("int", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "integer",
                     "Int64", "Int32", "long"), "int"),
    **dict.fromkeys(("float", "float16", "float32", "float64", "double", "Float64", "number"), "float"),
    **dict.fromkeys(("str", "string", "object", "unicode", "category", "StringDtype"), "str"),
    **dict.fromkeys(("bool", "boolean"), "bool"),
}
ROW_EXPECTATIONS = frozenset({
    "expect_column_values_to_not_be_null", "expect_column_values_to_be_between", "expect_column_values_to_be_in_set",
    "expect_column_values_to_not_be_in_set", "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex", "expect_column_value_lengths_to_be_between",
    "expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list",
    "expect_column_to_exist", "expect_column_values_to_be_unique",
})
COLUMN_SET = ("expect_table_columns_to_match_set", "expect_table_columns_to_match_ordered_list")
Violation = Literal["null", "below_min", "above_max", "not_in_set", "in_forbidden_set", "regex_mismatch",
                    "too_short", "too_long", "wrong_type", "non_finite", "missing_column"]


@dataclass(frozen=True)
class ColumnContract:
    """What one value of a column may be; ``None`` means unconstrained."""

    name: str
    kind: Kind = "str"
    nullable: bool = True
    minimum: float | None = None
    maximum: float | None = None
    strict_min: bool = False
    strict_max: bool = False
    value_set: tuple[Any, ...] | None = None
    forbidden: tuple[Any, ...] = ()
    regex: str | None = None
    not_regex: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    unique: bool = False
    typed_by: str = "default"  # where ``kind`` came from: suite, values, sample, bounds or default

    def violations(self) -> tuple[Violation, ...]:
        """The ways one value of this column can break the contract, each a case the code must reject."""
        cases: list[Violation] = ["missing_column", "wrong_type"]
        if not self.nullable:
            cases.append("null")
        if self.kind in ("int", "float") and self.value_set is None:
            cases += [c for c, bound in (("below_min", self.minimum), ("above_max", self.maximum)) if bound is not None]
            if not self.nullable or self.minimum is not None or self.maximum is not None:
                cases.append("non_finite")  # NaN reads as null, ±inf is outside any range
        if self.value_set is not None:
            cases.append("not_in_set")
        if self.forbidden:
            cases.append("in_forbidden_set")
        if self.regex is not None:
            cases.append("regex_mismatch")
        cases += [c for c, bound in (("too_short", self.min_length), ("too_long", self.max_length))
                  if bound is not None and (c == "too_long" or bound > 0)]
        return tuple(cases)


@dataclass(frozen=True)
class Contract:
    columns: tuple[ColumnContract, ...]
    unmodelled: tuple[str, ...] = ()  # expectation types (with their column) that do not bind one row

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def public_values(self) -> frozenset[str]:
        """Values the suite itself publishes (sets and bounds): seeing one in a message reveals no input."""
        values = set()
        for column in self.columns:
            for value in (*(column.value_set or ()), *column.forbidden, column.minimum, column.maximum):
                if value is not None:
                    values.add(str(value))
        return frozenset(values)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [vars(c) | {"value_set": list(c.value_set) if c.value_set is not None else None,
                                       "forbidden": list(c.forbidden)} for c in self.columns],
                "unmodelled": list(self.unmodelled)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Contract:
        columns = tuple(ColumnContract(**{**c, "value_set": tuple(c["value_set"]) if c["value_set"] is not None
                                          else None, "forbidden": tuple(c["forbidden"])}) for c in data["columns"])
        return cls(columns, tuple(data["unmodelled"]))


def _kind_of_values(values: tuple[Any, ...]) -> Kind | None:
    kinds = {"bool" if isinstance(v, bool) else "int" if isinstance(v, int) else "float" if isinstance(v, float)
             else "str" for v in values if v is not None}
    if kinds <= {"int"} and kinds:
        return "int"
    if kinds <= {"int", "float"} and kinds:
        return "float"
    return kinds.pop() if len(kinds) == 1 else ("str" if kinds else None)


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise GateInputError(f"{where}: expected a number, found {type(value).__name__}")
    return value


def _apply(column: ColumnContract, kind: str, kwargs: Mapping[str, Any], where: str) -> ColumnContract:
    """``column`` narrowed by one row-level expectation."""
    if kind == "expect_column_values_to_not_be_null":
        return replace(column, nullable=False)
    if kind == "expect_column_values_to_be_between":
        return replace(column, minimum=_number(kwargs.get("min_value"), where),
                       maximum=_number(kwargs.get("max_value"), where),
                       strict_min=bool(kwargs.get("strict_min")), strict_max=bool(kwargs.get("strict_max")))
    if kind == "expect_column_values_to_be_in_set":
        return replace(column, value_set=tuple(kwargs["value_set"]))
    if kind == "expect_column_values_to_not_be_in_set":
        return replace(column, forbidden=tuple(kwargs["value_set"]))
    if kind in ("expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex"):
        try:
            re.compile(kwargs["regex"])
        except re.error as exc:
            raise GateInputError(f"{where}: invalid regex: {exc}") from None
        key = "regex" if kind.endswith("_to_match_regex") else "not_regex"
        return replace(column, **{key: kwargs["regex"]})
    if kind == "expect_column_value_lengths_to_be_between":
        return replace(column, min_length=kwargs.get("min_value"), max_length=kwargs.get("max_value"))
    if kind in ("expect_column_values_to_be_of_type", "expect_column_values_to_be_in_type_list"):
        names = [kwargs["type_"]] if "type_" in kwargs else list(kwargs.get("type_list") or [])
        kinds = {TYPE_NAMES.get(str(n)) for n in names}
        if None in kinds or not kinds:
            raise GateInputError(f"{where}: cannot generate values of type(s) {names}")
        return replace(column, kind=_kind_of_values(tuple({"int": 0, "float": 0.0, "str": "", "bool": True}[k]
                                                           for k in kinds)) or "str", typed_by="suite")
    if kind == "expect_column_values_to_be_unique":
        return replace(column, unique=True)
    return column  # expect_column_to_exist


def _typed(column: ColumnContract, dtypes: Mapping[str, str]) -> ColumnContract:
    if column.typed_by == "suite":
        return column
    by_values = _kind_of_values(column.value_set) if column.value_set is not None else None
    if by_values:
        return replace(column, kind=by_values, typed_by="values")
    sample = TYPE_NAMES.get(str(dtypes.get(column.name, "")).split("[")[0])
    if sample:
        return replace(column, kind=sample, typed_by="sample")
    if column.minimum is not None or column.maximum is not None:
        return replace(column, kind="float", typed_by="bounds")
    return column


def parse_contract(suite: Mapping[str, Any], dtypes: Mapping[str, str] | None = None,
                   source: str = "suite") -> Contract:
    """The per-row contract of a GX suite (its JSON as a mapping); ``dtypes`` types what the suite does not."""
    expectations = suite.get("expectations") if isinstance(suite, Mapping) else None
    if not isinstance(expectations, list):
        raise GateInputError(f"{source}: not a GX expectation suite (no 'expectations' list)")
    order: list[str] = []
    columns: dict[str, ColumnContract] = {}
    unmodelled: list[str] = []
    for index, expectation in enumerate(expectations):
        kind = expectation.get("type") or expectation.get("expectation_type")
        kwargs = expectation.get("kwargs") or {}
        where = f"{source}: expectations[{index}] {kind}"
        if kind in COLUMN_SET:
            order += [c for c in kwargs.get("column_set") or kwargs.get("column_list") or [] if c not in order]
            continue
        column = kwargs.get("column")
        if column is not None and column not in order:
            order.append(column)
        if kind not in ROW_EXPECTATIONS or column is None or float(kwargs.get("mostly", 1.0)) < 1.0:
            unmodelled.append(f"{kind}({column})" if column else str(kind))
            continue
        try:
            columns[column] = _apply(columns.get(column, ColumnContract(column)), kind, kwargs, where)
        except (KeyError, TypeError) as exc:
            raise GateInputError(f"{where}: malformed arguments: {type(exc).__name__}: {exc}") from None
    if not order:
        raise GateInputError(f"{source}: the suite names no column, so no input can be generated from it")
    return Contract(tuple(_typed(columns.get(name, ColumnContract(name)), dtypes or {}) for name in order),
                    tuple(unmodelled))


def load_contract(path: Path, dtypes: Mapping[str, str] | None = None) -> Contract:
    try:
        return parse_contract(json.loads(Path(path).read_text()), dtypes, source=str(path))
    except OSError as exc:
        raise GateInputError(f"{path}: cannot read the expectation suite: {exc.strerror}") from None
    except ValueError as exc:
        raise GateInputError(f"{path}: the expectation suite is not JSON: {exc}") from None
