"""Differentially private releases of a table with OpenDP: a noisy row count, per-column histograms
and means, released as a ``DPProfile`` that monitoring keeps as its reference instead of raw rows.

Each column's missing values are one more cell of its histogram (``missing``), so monitoring can test the
share of missing values (ADR 0059) at no extra cost: one row, added or removed, changes one cell of a
histogram by one whatever the number of cells, so the histogram's sensitivity, noise scale and ε are
those of a histogram without that cell. Profiles of version 1 counted a categorical column's missing values
in its ``other`` cell (``missing`` is ``None`` there).

What is protected: each released number is ε-DP (Laplace) or (ε, δ)-DP (Gaussian) with respect to
adding or removing one row (OpenDP's symmetric distance, d_in = 1), and the profile as a whole is
(Σε, Σδ)-DP by sequential composition. Every noise scale is calibrated, and every cost read back,
from OpenDP's own privacy maps; the data are touched only after the cost has been charged.

What is NOT protected: the schema (column names, which columns exist and their types, which can make
the release fail before anything is spent), and anything declared in the spec. Bin edges, categories
and mean bounds must come from the policy (domain knowledge), never from the data: edges or bounds
fitted to the data (min/max, quantiles) leak it outside the guarantee. Rows are the unit of privacy:
a person owning several rows is protected only up to a group-privacy factor. Noise is drawn by
OpenDP from a CSPRNG; it cannot be seeded, so a release is not reproducible (by design).
"""

from __future__ import annotations

import importlib.metadata
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlgate.core.digests import json_digest
from mlgate.core.errors import GateInputError

PROFILE_VERSION = 3
_READABLE_VERSIONS = (1, 2, 3)
Mechanism = Literal["laplace", "gaussian"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Query(_Frozen):
    """The privacy cost of one released statistic. Laplace is pure ε-DP (δ must be 0); Gaussian needs δ > 0."""

    epsilon: float = Field(gt=0, allow_inf_nan=False)
    delta: float = Field(0.0, ge=0, lt=1)
    mechanism: Mechanism = "laplace"

    @model_validator(mode="after")
    def _delta_fits_mechanism(self) -> Query:
        if (self.mechanism == "gaussian") != (self.delta > 0):
            raise ValueError("the gaussian mechanism needs 0 < delta < 1; laplace needs delta = 0")
        return self


class NumericColumn(_Frozen):
    """A numeric column: a histogram over declared ``edges`` and, optionally, a mean clipped to ``bounds``.

    Bins are half-open ``[edges[i], edges[i+1])`` (``numpy.searchsorted(edges, x, "right")``); values below
    the first edge, at or above the last, and missing ones are counted in cells of their own.
    """

    kind: Literal["numeric"] = "numeric"
    edges: tuple[float, ...] = Field(min_length=2)
    histogram: Query
    bounds: tuple[float, float] | None = None
    mean: Query | None = None

    @model_validator(mode="after")
    def _check(self) -> NumericColumn:
        if not all(math.isfinite(e) for e in self.edges) or any(a >= b for a, b in pairwise(self.edges)):
            raise ValueError("edges must be finite and strictly increasing")
        if self.mean is not None and self.bounds is None:
            raise ValueError("a mean needs declared bounds (from the policy, never from the data)")
        if self.bounds is not None and not (all(map(math.isfinite, self.bounds)) and self.bounds[0] < self.bounds[1]):
            raise ValueError("bounds must be finite with lower < upper")
        return self


class CategoricalColumn(_Frozen):
    """A categorical column: noisy counts of the declared categories, one cell for anything else, one for missing."""

    kind: Literal["categorical"] = "categorical"
    categories: tuple[str, ...] = Field(min_length=1)
    histogram: Query

    @model_validator(mode="after")
    def _unique(self) -> CategoricalColumn:
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories must be unique")
        return self


Column = Annotated[NumericColumn | CategoricalColumn, Field(discriminator="kind")]


class ReleaseSpec(_Frozen):
    """What one release publishes: the row count and the declared columns, each query with its own cost;
    ``ood``: the histogram of each row's out-of-distribution score (the spread of its numeric columns' normal
    scores against the released histograms, as ``monitor.queries`` scores a query), without which monitoring
    cannot bound how many natural queries look out of distribution against this profile (ADR 0066); ``query_space``:
    the rows' joint structure for that gate, published outside the DP guarantee (ADR 0067)."""

    rows: Query
    columns: dict[str, Column] = Field(default_factory=dict)
    ood: Query | None = None
    query_space: bool = Field(default=False, description="also publish the numeric columns' query space for "
                              "monitor.queries: quantiles, principal directions and thresholds of the exact rows — "
                              "NOT differentially private, charged nothing; guard the release as the model (ADR 0067)")

    @model_validator(mode="after")
    def _ood_needs_numbers(self) -> ReleaseSpec:
        if (self.ood is not None or self.query_space) and not self.numeric_columns:
            raise ValueError("an ood calibration or a query space needs at least one numeric column")
        return self

    @property
    def numeric_columns(self) -> list[str]:
        return [name for name, column in self.columns.items() if isinstance(column, NumericColumn)]


@dataclass(frozen=True)
class PlannedQuery:
    """One calibrated OpenDP measurement; ``epsilon``/``delta`` are what its privacy map certifies at d_in = 1."""

    name: str
    mechanism: str
    scale: float
    epsilon: float
    delta: float
    measurement: Any  # opendp.mod.Measurement

    def describe(self) -> dict[str, Any]:
        return {"mechanism": self.mechanism, "scale": self.scale, "epsilon": self.epsilon, "delta": self.delta}


@dataclass(frozen=True)
class ReleasePlan:
    spec: ReleaseSpec
    queries: dict[str, PlannedQuery]

    @property
    def epsilon(self) -> float:
        """Basic sequential composition: the costs add up (tight for pure ε-DP)."""
        return math.fsum(q.epsilon for q in self.queries.values())

    @property
    def delta(self) -> float:
        return math.fsum(q.delta for q in self.queries.values())

    @property
    def digest(self) -> str:
        """Names the release before it happens, so the ledger's spend and the profile can refer to each other."""
        return json_digest({"spec": self.spec.model_dump(mode="json"),
                            "queries": {n: q.describe() for n, q in self.queries.items()}})


@dataclass(frozen=True)
class NumericProfile:
    edges: list[float]
    counts: list[int]
    below: int
    above: int
    missing: int
    bounds: list[float] | None
    mean: float | None
    kind: str = "numeric"


@dataclass(frozen=True)
class CategoricalProfile:
    categories: list[str]
    counts: list[int]
    other: int
    kind: str = "categorical"
    missing: int | None = None  # None: a version 1 profile, whose ``other`` holds the missing values


@dataclass(frozen=True)
class DPProfile:
    """The released reference profile: JSON-ready, and all monitoring may keep of the training data."""

    dataset_digest: str
    plan_digest: str
    rows: int
    columns: dict[str, NumericProfile | CategoricalProfile]
    epsilon: float
    delta: float
    queries: dict[str, dict[str, Any]]
    tool: str
    ood: dict[str, Any] | None = None  # {"columns", "counts" (raw noisy: may be negative), "incomplete", "statistic"}
    # The rows' query space (``monitor.extraction.space_record``): exact, not DP, released only when the policy
    # asks (``ReleaseSpec.query_space``, ADR 0067).
    query_space: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"version": PROFILE_VERSION, **asdict(self)}
        if self.query_space is None:  # a release without one digests as before ADR 0067
            del data["query_space"]
        return data

    @property
    def digest(self) -> str:
        return json_digest(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DPProfile:
        try:
            if data["version"] not in _READABLE_VERSIONS:
                raise ValueError(f"unsupported profile version {data['version']!r}")
            kinds = {"numeric": NumericProfile, "categorical": CategoricalProfile}
            columns = {name: kinds[col["kind"]](**col) for name, col in data["columns"].items()}
            if data["version"] > 1 and any(c.missing is None for c in columns.values()):
                raise ValueError("a column of a version 2 profile has no missing count")
            return cls(**{**{k: v for k, v in data.items() if k != "version"}, "columns": columns})
        except (KeyError, TypeError, ValueError) as exc:
            raise GateInputError(f"not a valid mlgate DP profile: {exc!r}") from None


def opendp_version() -> str:
    return importlib.metadata.version("opendp")


def _opendp():
    """OpenDP's modules, imported narrowly: ``opendp.prelude`` also imports scikit-learn (seconds)."""
    from types import SimpleNamespace

    from opendp import combinators, measurements, transformations
    from opendp.domains import atom_domain, vector_domain
    from opendp.metrics import symmetric_distance
    from opendp.mod import binary_search_param, enable_features

    enable_features("contrib")
    return SimpleNamespace(t=transformations, m=measurements, c=combinators, atom_domain=atom_domain,
                           vector_domain=vector_domain, symmetric_distance=symmetric_distance,
                           binary_search_param=binary_search_param)


def _calibrate(name: str, query: Query, stable: Callable[[str], Any]) -> PlannedQuery:
    """Find the smallest noise scale whose certified cost fits ``query`` and read the cost back from OpenDP.

    ``stable(mechanism)`` builds the transformation the noise is added to (built once: the search only
    varies the noise); Gaussian noise (zCDP in OpenDP) is converted to (ε, δ)-DP.
    """
    dp = _opendp()
    transformation = stable(query.mechanism)
    if query.mechanism == "laplace":
        def build(scale: float):
            return transformation >> dp.m.then_laplace(scale)
        target: Any = query.epsilon
    else:
        def build(scale: float):
            return dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(transformation >> dp.m.then_gaussian(scale)),
                                       query.delta)
        target = (query.epsilon, query.delta)
    scale = dp.binary_search_param(build, d_in=1, d_out=target)
    measurement = build(scale)
    cost = measurement.map(1)
    epsilon, delta = (cost, 0.0) if query.mechanism == "laplace" else cost
    return PlannedQuery(name, query.mechanism, scale, float(epsilon), float(delta), measurement)


def _histogram(cells: int) -> Callable[[str], Any]:
    """Counts of integer cell codes ``0..cells-1`` (codes computed row by row, so the map is 1-stable)."""
    def stable(mechanism: str):
        dp = _opendp()
        metric = "L1Distance<int>" if mechanism == "laplace" else "L2Distance<int>"
        return ((dp.vector_domain(dp.atom_domain(T=int)), dp.symmetric_distance())
                >> dp.t.then_count_by_categories(categories=list(range(cells)), null_category=False, MO=metric))
    return stable


def _row_count(_mechanism: str):
    dp = _opendp()
    return (dp.vector_domain(dp.atom_domain(T=bool)), dp.symmetric_distance()) >> dp.t.then_count()


def _clipped_sum(bounds: tuple[float, float]) -> Callable[[str], Any]:
    def stable(_mechanism: str):
        dp = _opendp()
        return ((dp.vector_domain(dp.atom_domain(T=float, nan=True)), dp.symmetric_distance())
                >> dp.t.then_drop_null() >> dp.t.then_clamp(tuple(bounds)) >> dp.t.then_sum())
    return stable


def plan_release(spec: ReleaseSpec) -> ReleasePlan:
    """Calibrate every query of ``spec``. Touches no data: the plan's cost can be charged before release."""
    queries = [_calibrate("rows", spec.rows, _row_count)]
    for name, column in spec.columns.items():
        cells = len(column.edges) + 2 if isinstance(column, NumericColumn) else len(column.categories) + 2
        queries.append(_calibrate(f"{name}.histogram", column.histogram, _histogram(cells)))
        if isinstance(column, NumericColumn) and column.mean is not None:
            queries.append(_calibrate(f"{name}.mean", column.mean, _clipped_sum(column.bounds)))
    if spec.ood is not None:
        from mlgate.gates.monitor.extraction import ood_edges

        cells = len(ood_edges(len(spec.numeric_columns))) + 2  # below, between, at/above the edges; incomplete
        queries.append(_calibrate("ood.histogram", spec.ood, _histogram(cells)))
    return ReleasePlan(spec, {q.name: q for q in queries})


def validate_frame(frame, spec: ReleaseSpec) -> None:
    """Fail before any budget is spent: every declared column exists, numeric ones hold numbers."""
    import pandas as pd

    missing = sorted(set(spec.columns) - set(map(str, frame.columns)))
    if missing:
        raise GateInputError(f"columns declared in the privacy release are missing from the data: {missing}")
    for name, column in spec.columns.items():
        if isinstance(column, NumericColumn) and not pd.api.types.is_numeric_dtype(frame[name]):
            raise GateInputError(f"column {name!r} is declared numeric but has dtype {frame[name].dtype}")


def _numeric_cells(values, edges):
    """Cell per row: 0 below the first edge, 1..k the bins, k+1 at/above the last edge, k+2 missing.

    As int32 numpy arrays (OpenDP's ``int``): OpenDP copies those in one go, lists value by value."""
    import numpy as np

    cells = np.searchsorted(np.asarray(edges), values, side="right").astype(np.int32)
    cells[np.isnan(values)] = len(edges) + 1
    return cells


def _categorical_cells(series, categories):
    """Cell per row: the index of its category, len(categories) for anything else, len(categories) + 1 missing."""
    import numpy as np
    import pandas as pd

    text = series.astype("string")
    codes = pd.Categorical(text, categories=list(categories)).codes.astype(np.int32)
    codes[codes < 0] = len(categories)
    codes[text.isna().to_numpy()] = len(categories) + 1
    return codes


def _non_negative(values) -> list[int]:
    """Post-processing (free of privacy cost): counts cannot be negative."""
    return [max(0, int(v)) for v in values]


def release(frame, plan: ReleasePlan, dataset_digest: str, query_space: dict[str, Any] | None = None) -> DPProfile:
    """Run the plan on ``frame`` (a pandas DataFrame). Charge ``plan.epsilon``/``plan.delta`` first.
    ``query_space``: the rows' query space to publish with it (not DP; ``data.privacy.query_space``, ADR 0067)."""
    import numpy as np

    validate_frame(frame, plan.spec)
    q = plan.queries
    rows = _non_negative([q["rows"].measurement(np.ones(len(frame), dtype=bool))])[0]
    columns: dict[str, NumericProfile | CategoricalProfile] = {}
    for name, column in plan.spec.columns.items():
        if isinstance(column, CategoricalColumn):
            noisy = q[f"{name}.histogram"].measurement(_categorical_cells(frame[name], column.categories))
            counts = _non_negative(noisy)
            columns[name] = CategoricalProfile(list(column.categories), counts[:-2], counts[-2], missing=counts[-1])
            continue
        values = np.require(frame[name].to_numpy(dtype=np.float64, na_value=np.nan), requirements=["C", "W"])
        noisy = q[f"{name}.histogram"].measurement(_numeric_cells(values, column.edges))
        counts, mean = _non_negative(noisy), None
        if column.mean is not None:
            noisy_sum = q[f"{name}.mean"].measurement(values)
            present = max(1.0, float(sum(noisy[:-1])))  # non-missing rows: post-processing of the histogram
            mean = min(max(noisy_sum / present, column.bounds[0]), column.bounds[1])
        bins = len(column.edges) - 1
        columns[name] = NumericProfile(list(column.edges), counts[1:bins + 1], counts[0], counts[bins + 1],
                                       counts[bins + 2], list(column.bounds) if column.bounds else None, mean)
    profile = DPProfile(dataset_digest, plan.digest, rows, columns, plan.epsilon, plan.delta,
                        {n: pq.describe() for n, pq in q.items()}, f"opendp {opendp_version()}",
                        query_space=query_space)
    if "ood.histogram" not in q:
        return profile
    return replace(profile, ood=_ood_counts(frame, profile, plan.spec.numeric_columns, q["ood.histogram"]))


def _ood_counts(frame, profile: DPProfile, columns: list[str], query: PlannedQuery) -> dict[str, Any]:
    """Noisy counts of the rows' score cells (``extraction.calibrate``) against the histograms released just
    before: a row's cell depends on that row and on what is already public, so the counts are one more 1-stable
    histogram (sequential composition). Rows missing a numeric value get a cell of their own (a query with a
    missing feature is refused, so they are no natural query). The counts are kept raw: clamping each at 0 would
    add half a noise scale per empty cell to every tail the threshold sums."""
    import numpy as np

    from mlgate.gates.monitor.extraction import OOD_STATISTIC, calibrate, ood_edges
    from mlgate.gates.monitor.monitoring import reference_from_release

    x = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    complete = np.isfinite(x).all(axis=1)
    cells = np.full(len(x), len(ood_edges(len(columns))) + 1, dtype=np.int32)
    cells[complete] = calibrate(reference_from_release(profile.to_dict()), x[complete], columns)
    noisy = [int(v) for v in query.measurement(cells)]
    return {"columns": columns, "counts": noisy[:-1], "incomplete": max(0, noisy[-1]), "statistic": OOD_STATISTIC}
