"""Hypothesis strategies from a ``Contract``: in-contract frames (with boundary values mixed in) and frames
that break the contract in exactly one cell or column, labelled with how.

Imported only inside the isolated child of ``code.dynamic`` (Hypothesis and pandas load there). Frames are
built the way ``pandas.read_csv`` would type them (an integer column with a null becomes float, text is
text), so the code under test meets what the pipeline's loader hands it. Free-text columns also draw
*canary* tokens, distinctive values whose appearance in an exception or a log line proves a leak.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

from hypothesis import strategies as st

from mlgate.gates.code.contract import ColumnContract, Contract

INT64 = (-(2**63), 2**63 - 1)
CANARY = st.integers(0, 2**32 - 1).map(lambda n: f"cnry{n:08x}")
TRICKY_TEXT = ("", " ", "é", "\u202e", "0", "-1", "NaN", "None", "x" * 1000, "ß" * 3, "\U0001f600")


def _int_bounds(column: ColumnContract) -> tuple[int, int]:
    low = INT64[0] if column.minimum is None else math.ceil(column.minimum)
    high = INT64[1] if column.maximum is None else math.floor(column.maximum)
    if column.strict_min and column.minimum is not None and low == column.minimum:
        low += 1
    if column.strict_max and column.maximum is not None and high == column.maximum:
        high -= 1
    return max(low, INT64[0]), min(high, INT64[1])


def _text_ok(column: ColumnContract, value: str) -> bool:
    if column.min_length is not None and len(value) < column.min_length:
        return False
    if column.max_length is not None and len(value) > column.max_length:
        return False
    if column.regex is not None and not re.search(column.regex, value):
        return False
    if column.not_regex is not None and re.search(column.not_regex, value):
        return False
    return value not in column.forbidden


def boundaries(column: ColumnContract) -> list[Any]:
    """Values at the edges of the column's contract: its bounds, zero, the extremes of an open range."""
    if column.value_set is not None:
        return []
    if column.kind == "int":
        low, high = _int_bounds(column)
        return sorted({v for v in (low, high, 0, 1, -1) if low <= v <= high})
    if column.kind == "float":
        low = -sys.float_info.max if column.minimum is None else float(column.minimum)
        high = sys.float_info.max if column.maximum is None else float(column.maximum)
        if column.strict_min:
            low = math.nextafter(low, math.inf)
        if column.strict_max:
            high = math.nextafter(high, -math.inf)
        edges = [low, high, 0.0, -0.0, 5e-324, 1.0, -1.0,
                 math.nextafter(low, math.inf), math.nextafter(high, -math.inf)]
        return [v for v in dict.fromkeys(edges) if low <= v <= high and math.isfinite(v)]
    if column.kind == "str":
        return [v for v in TRICKY_TEXT if _text_ok(column, v)]
    return []


def value(column: ColumnContract) -> st.SearchStrategy[Any]:
    """One non-null in-contract value of ``column``."""
    if column.value_set is not None:
        allowed = [v for v in column.value_set if v not in column.forbidden]
        return st.sampled_from(allowed) if allowed else st.nothing()
    if column.kind == "bool":
        return st.booleans()
    if column.kind == "int":
        low, high = _int_bounds(column)
        base: st.SearchStrategy[Any] = st.integers(low, high) if low <= high else st.nothing()
    elif column.kind == "float":
        base = st.floats(column.minimum, column.maximum, exclude_min=column.strict_min and column.minimum is not None,
                         exclude_max=column.strict_max and column.maximum is not None,
                         allow_nan=False, allow_infinity=False)
    elif column.regex is not None:
        base = st.from_regex(column.regex).filter(lambda v: _text_ok(column, v))
    else:
        sizes = {"min_size": column.min_length or 0, "max_size": column.max_length}
        base = (CANARY | st.text(**sizes)).filter(lambda v: _text_ok(column, v))
    edges = boundaries(column)
    return st.sampled_from(edges) | base if edges else base


def cell(column: ColumnContract) -> st.SearchStrategy[Any]:
    """A value or (where allowed) a null; free text draws a canary as often as anything else."""
    free_text = column.kind == "str" and column.value_set is None and column.regex is None
    canary = [CANARY.filter(lambda v: _text_ok(column, v))] if free_text else []
    return st.one_of(*canary, *([st.none()] if column.nullable else []), value(column))


Example = tuple[list[dict[str, Any]], str, tuple[int, str] | None]


def frames(contract: Contract, max_rows: int) -> st.SearchStrategy[Example]:
    """In-contract rows (1 to ``max_rows``), the label ``in contract`` and no breaking cell."""
    row = st.fixed_dictionaries({c.name: cell(c) for c in contract.columns})
    unique = tuple((lambda r, name=c.name: r[name]) for c in contract.columns if c.unique)
    rows = st.lists(row, min_size=1, max_size=max_rows, unique_by=unique or None)
    return st.tuples(rows, st.just("in contract"), st.none())


def breaking_value(column: ColumnContract, violation: str) -> st.SearchStrategy[Any]:
    """A value that breaks ``column``'s contract the given way (``missing_column`` has none)."""
    numeric = column.kind in ("int", "float")
    if violation in ("null", "missing_column"):
        return st.none()
    if violation == "non_finite":
        return st.sampled_from([math.inf, -math.inf, math.nan])
    if violation == "below_min":
        bound = float(column.minimum)
        return st.floats(max_value=bound, exclude_max=not column.strict_min, allow_nan=False, allow_infinity=False)
    if violation == "above_max":
        bound = float(column.maximum)
        return st.floats(min_value=bound, exclude_min=not column.strict_max, allow_nan=False, allow_infinity=False)
    if violation == "not_in_set":
        allowed = set(column.value_set or ())
        unseen = st.integers(-1000, 1000) if numeric else CANARY.map(lambda s: f"unseen-{s}")
        return unseen.filter(lambda v: v not in allowed)
    if violation == "in_forbidden_set":
        return st.sampled_from(column.forbidden)
    if violation == "regex_mismatch":
        return st.text().filter(lambda v: not re.search(column.regex or "", v))
    if violation == "too_short":
        return st.text(max_size=max(0, (column.min_length or 1) - 1))
    if violation == "too_long":
        longest = column.max_length or 0
        return st.text(min_size=longest + 1, max_size=longest + 40)
    # wrong_type: text where numbers or booleans belong, a number where text belongs
    return CANARY if numeric or column.kind == "bool" else st.floats(allow_nan=False)


@st.composite
def broken_frames(draw: st.DrawFn, contract: Contract, max_rows: int) -> Example:
    """In-contract rows with exactly one cell (or one whole column) out of contract, how, and which cell."""
    rows, _, _ = draw(frames(contract, max_rows))
    cases = [(c, v) for c in contract.columns for v in c.violations()]
    column, violation = draw(st.sampled_from(cases))
    case = f"{column.name}: {violation.replace('_', ' ')}"
    if violation == "missing_column":
        for row in rows:
            row.pop(column.name)
        return rows, case, None
    index = draw(st.integers(0, len(rows) - 1))
    rows[index][column.name] = draw(breaking_value(column, violation))
    return rows, case, (index, column.name)


def to_frame(rows: list[dict[str, Any]], contract: Contract) -> Any:
    """The rows as ``pandas.read_csv`` would type them: integers with a null become floats, text stays text."""
    import pandas as pd

    data = {}
    for column in contract.columns:
        if rows and column.name not in rows[0]:
            continue
        values = [row.get(column.name) for row in rows]
        typed = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values if v is not None)
        if column.kind in ("int", "float") and typed:
            kind = "int64" if column.kind == "int" and None not in values and all(
                isinstance(v, int) for v in values) else "float64"
            data[column.name] = pd.Series([math.nan if v is None else v for v in values], dtype=kind)
        else:
            data[column.name] = pd.Series(values, dtype=object if column.kind == "bool" else None)
    return pd.DataFrame(data, index=range(len(rows)))
