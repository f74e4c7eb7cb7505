"""``monitor.drift`` over mergeable sketches (Apache DataSketches), for windows and references that do not fit
in memory: each partition, file or worker is profiled on its own and the profiles are merged.

- numeric columns: a KLL quantile sketch (``kll_doubles_sketch``); its normalized rank error (about 0.33 %
  at ``k = 1000``, with 99 % confidence) bounds how far any CDF value it reports is from the data's;
- categorical columns: a frequent-items sketch; while a column has fewer distinct values than the sketch's
  map holds, its counts are exact (no item's bounds differ), else the sketch lists what it can guarantee and
  the rest is the profile's ``OTHER`` cell;
- every column: its missing values (nulls, and NaN in numbers), counted exactly. A column a batch or a
  partition does not hold is missing in all its rows (ADR 0059), so every column accounts for every row of
  the sketch (``values + nulls == rows``, checked after each update and merge and on loading); a column
  whose values are all null (Arrow's null type) is counted as missing and sketched as nothing.

A reference sketch becomes a ``ReferenceProfile`` (cut points at its quantiles, counts from its CDF), and the
current window's sketch is counted into the same bins, so the gate's decision is drift.py's binned path:
KS and the normal-scores location and scale tests at the cut points, the Wasserstein effect on
reference-quantile groups, the missing-share test, the same correction, judgement and persistence rule
(ADR 0019, 0041, 0053, 0059).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlgate.core.digests import json_digest
from mlgate.core.errors import GateInputError
from mlgate.core.results import GateResult, Status, Subject, ToolInfo, utcnow
from mlgate.gates.monitor import drift
from mlgate.gates.monitor.inference_log import RESERVED
from mlgate.gates.monitor.policies import DriftPolicy

KLL_K = 1000
LG_MAX_ITEMS = 12  # up to 3 * 2**12 / 4 = 3072 distinct categories counted exactly
PROFILE_BINS = 100
SKETCH_KIND = "mlgate.window_sketch"


def _numeric(kind: pa.DataType) -> bool:
    return (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)) \
        and not pa.types.is_boolean(kind)


@dataclass
class WindowSketch:
    """Per column, a KLL sketch (numbers) or a frequent-items sketch (everything else) and its missing
    values; and the row count."""

    rows: int = 0
    numeric: dict[str, Any] = field(default_factory=dict)
    categorical: dict[str, Any] = field(default_factory=dict)
    nulls: dict[str, int] = field(default_factory=dict)

    def update(self, batch: pa.RecordBatch, columns: Sequence[str] | None = None) -> None:
        from datasketches import frequent_strings_sketch, kll_doubles_sketch

        names = columns or [n for n in batch.schema.names if n not in RESERVED]
        for name in names:
            values = batch.column(name)
            missing = values.null_count
            if _numeric(values.type):
                numbers = pc.cast(pc.drop_null(values), pa.float64()).to_numpy(zero_copy_only=False)
                nan = np.isnan(numbers)
                numbers, missing = numbers[~nan], missing + int(nan.sum())
                kll = self.numeric.setdefault(name, kll_doubles_sketch(KLL_K))
                if numbers.size:
                    kll.update(numbers)
            elif not pa.types.is_null(values.type):  # a column of nulls only says nothing of its kind
                sketch = self.categorical.setdefault(name, frequent_strings_sketch(LG_MAX_ITEMS))
                counts = pc.value_counts(pc.drop_null(pc.cast(values, pa.string())))
                for value, count in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(),
                                        strict=True):
                    sketch.update(value, count)
            self.nulls[name] = self.nulls.get(name, self.rows) + missing  # earlier batches without it: missing
        for name in self.nulls.keys() - set(names):
            self.nulls[name] += batch.num_rows
        self.rows += batch.num_rows
        self._check()

    def merge(self, other: WindowSketch) -> WindowSketch:
        """This sketch with ``other``'s rows added (a partition, a worker); ``other`` is left as it was. A
        column only one side holds is missing in all the other side's rows."""
        for mine, theirs in ((self.numeric, other.numeric), (self.categorical, other.categorical)):
            for name, sketch in theirs.items():
                if name in mine:
                    mine[name].merge(sketch)
                else:
                    mine[name] = type(sketch).deserialize(sketch.serialize())
        self.nulls = {name: self.nulls.get(name, self.rows) + other.nulls.get(name, other.rows)
                      for name in self.nulls.keys() | other.nulls.keys()}
        self.rows += other.rows
        self._check()
        return self

    def values(self, name: str) -> int:
        """How many values of column ``name`` were sketched (its missing ones not counted)."""
        if name in self.numeric:
            return int(self.numeric[name].n)
        return int(self.categorical[name].total_weight) if name in self.categorical else 0

    def _check(self) -> None:
        """A column sketched as numbers in one batch or partition and as text in another is refused: the
        numeric test would see only its numeric part (drifted rows sent as strings were never tested). So is
        a column whose values and missing values do not add up to the sketch's rows (a forged or damaged
        sketch): its tests would judge fewer rows than the window holds. So is a negative row count: merged,
        a partition of -k rows and no columns took k missing values off every column (redteam7)."""
        if self.rows < 0:
            raise GateInputError(f"the sketch holds {self.rows} rows; a row count cannot be negative")
        if both := sorted(self.numeric.keys() & self.categorical.keys()):
            raise GateInputError(f"column(s) {both} hold numbers in some batches or partitions and text in "
                                 "others; cast them to one type before sketching")
        if uncounted := sorted((self.numeric.keys() | self.categorical.keys()) - self.nulls.keys()):
            raise GateInputError(f"column(s) {uncounted}: the sketch counts no missing values for them")
        if bad := sorted(n for n, m in self.nulls.items() if m < 0 or self.values(n) + m != self.rows):
            raise GateInputError(f"column(s) {bad}: values and missing values do not add up to the sketch's "
                                 f"{self.rows} rows")

    def to_dict(self) -> dict[str, Any]:
        def encode(sketches: dict[str, Any]) -> dict[str, str]:
            return {n: base64.b64encode(s.serialize()).decode() for n, s in sorted(sketches.items())}

        return {"kind": SKETCH_KIND, "rows": self.rows, "kll_k": KLL_K, "nulls": dict(sorted(self.nulls.items())),
                "numeric": encode(self.numeric), "categorical": encode(self.categorical)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowSketch:
        from datasketches import frequent_strings_sketch, kll_doubles_sketch

        if "nulls" not in data:
            raise GateInputError("the window sketch counts no missing values (made before ADR 0059), so a column "
                                 "turning null could not be seen; sketch the data again")
        try:
            sketch = cls(int(data["rows"]),
                         {n: kll_doubles_sketch.deserialize(base64.b64decode(s)) for n, s in data["numeric"].items()},
                         {n: frequent_strings_sketch.deserialize(base64.b64decode(s))
                          for n, s in data["categorical"].items()},
                         {str(n): int(m) for n, m in data["nulls"].items()})
        except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise GateInputError(f"not a valid window sketch: {type(exc).__name__}") from None
        sketch._check()
        return sketch

    @property
    def digest(self) -> str:
        return json_digest(self.to_dict())


def sketch_batches(batches: Iterable[pa.RecordBatch], columns: Sequence[str] | None = None) -> WindowSketch:
    sketch = WindowSketch()
    for batch in batches:
        sketch.update(batch, columns)
    return sketch


def is_sketch_file(path: str | Path) -> bool:
    return str(path).lower().endswith(".json")


def load_sketch(path: str | Path) -> WindowSketch:
    """A window sketch JSON (``WindowSketch.to_dict()``, as ``mlgate sketch`` writes it)."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise GateInputError(f"{path}: cannot read the sketch: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise GateInputError(f"{path}: the sketch is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != SKETCH_KIND:
        raise GateInputError(f"{path}: not a window sketch (kind {SKETCH_KIND!r})")
    if data.get("kll_k") != KLL_K:
        raise GateInputError(f"{path}: sketched with KLL k={data.get('kll_k')}, this mlgate uses k={KLL_K}")
    return WindowSketch.from_dict(data)


def sketch_inputs(inputs: Sequence[str | Path], columns: Sequence[str] | None = None,
                  batch_rows: int | None = None,
                  reader: Callable[[Any, list[str]], WindowSketch] | None = None) -> WindowSketch:
    """One sketch of several inputs, merged: sketch files (a partition's or a worker's), and files, dataset
    directories or tables read in record batches (bounded memory), or by ``reader(source, columns)`` (a Spark
    job: ``sketches_spark.sketch_spark``)."""
    from mlgate.gates.data.sources import BATCH_ROWS, open_source

    merged = WindowSketch()
    for spec in inputs:
        if is_sketch_file(spec):
            merged.merge(load_sketch(spec))
            continue
        source = open_source(spec, batch_rows or BATCH_ROWS)
        names = list(columns) if columns is not None else [n for n in source.schema().names if n not in RESERVED]
        missing = sorted(set(names) - set(source.schema().names))
        if missing:
            raise GateInputError(f"{source.label}: no column(s) {missing}")
        merged.merge(sketch_batches(source.batches(names), names) if reader is None else reader(source, names))
    return merged


def rank_error() -> float:
    """The KLL sketches' normalized rank error (99 % confidence): the most a CDF value they report is off."""
    from datasketches import kll_doubles_sketch

    return float(kll_doubles_sketch.get_normalized_rank_error(KLL_K, False))


def _category_counts(sketch: Any) -> dict[str, float]:
    from datasketches import frequent_items_error_type

    items = sketch.get_frequent_items(frequent_items_error_type.NO_FALSE_NEGATIVES, 0)
    if all(lower == upper for _, _, lower, upper in items) and sum(e for _, e, *_ in items) == sketch.total_weight:
        return {item: float(estimate) for item, estimate, *_ in items}  # never purged: every count exact
    listed = {item: float(lower) for item, _, lower, _ in
              sketch.get_frequent_items(frequent_items_error_type.NO_FALSE_POSITIVES)}
    return {**listed, drift.OTHER: float(sketch.total_weight - sum(listed.values()))}


def _binned(sketch: Any, cuts: np.ndarray) -> np.ndarray:
    """Counts of the sketched values in the bins ``(cuts[i-1], cuts[i]]`` (outer bins open-ended)."""
    cdf = np.asarray(sketch.get_cdf(cuts.tolist(), True), np.float64)
    return sketch.n * np.diff(np.concatenate([[0.0], cdf]))


def reference_profile(sketch: WindowSketch, bins: int = PROFILE_BINS) -> drift.ReferenceProfile:
    """The ``ReferenceProfile`` of a sketched reference: cut points at ``bins`` quantiles, counts from the CDF."""
    if empty := sorted(n for n in sketch.nulls if not sketch.values(n)):
        raise GateInputError(f"column(s) {empty}: no values to profile")
    numeric = {}
    for name, kll in sketch.numeric.items():
        cuts = np.unique(np.asarray(kll.get_quantiles(np.linspace(0, 1, bins + 1)[1:-1].tolist()), np.float64))
        numeric[name] = (cuts, _binned(kll, cuts))
    categorical = {name: _category_counts(s) for name, s in sketch.categorical.items()}
    return drift.ReferenceProfile(numeric, categorical, nulls={n: float(m) for n, m in sketch.nulls.items()})


def _numeric_stats(kll: Any, cuts: np.ndarray, ref_counts: np.ndarray, config: DriftPolicy) -> dict[str, Any]:
    return drift.counts_stats(cuts, ref_counts, _binned(kll, cuts), config, "sketch")


def check_drift_sketch(current: WindowSketch, reference: WindowSketch | drift.ReferenceProfile,
                       config: DriftPolicy, policy_digest: str, subject: Subject | None = None,
                       history: Sequence[Mapping[str, Any]] = ()) -> GateResult:
    """``monitor.drift`` of a sketched window against a sketched (or binned) reference: data drift only
    (concept drift needs labels joined to predictions, which a sketch does not keep)."""
    started, clock = utcnow(), time.perf_counter()
    profile = reference_profile(reference) if isinstance(reference, WindowSketch) else reference
    if current.rows < config.min_rows:
        raise GateInputError(f"{current.rows} rows in the current window, fewer than min_rows={config.min_rows}")
    known = {**dict.fromkeys(profile.numeric, "numeric"), **dict.fromkeys(profile.categorical, "categorical")}
    columns = list(config.columns) if config.columns is not None else sorted(known)
    # the window's column must be of the reference's kind, or hold no value at all (every row missing)
    missing = sorted(c for c in columns if c not in known or c not in current.nulls
                     or c in (current.categorical if known[c] == "numeric" else current.numeric))
    if missing or not columns:
        raise GateInputError(f"column(s) {missing} missing from the current window or the reference"
                             if missing else "no feature columns to test for drift")
    drift.require_nulls(profile, columns)
    stats = {}
    for column in columns:
        cur = (current.values(column), current.nulls[column])
        if known[column] == "numeric":
            cuts, ref_counts = profile.numeric[column]
            values = partial(_numeric_stats, current.numeric.get(column), cuts, ref_counts, config)
            ref = (float(ref_counts.sum()), profile.nulls[column])
        else:
            ref_cells = profile.categorical[column]
            cur_cells = _category_counts(current.categorical[column]) if column in current.categorical else {}
            if drift.OTHER in ref_cells:
                cur_cells = drift._fold_unlisted(cur_cells, ref_cells)
            values = partial(drift._categorical_stats, cur_cells, ref_cells, config)
            ref = (sum(ref_cells.values()), profile.nulls[column])
        stats[column] = drift.column_stats(column, known[column], values, cur, ref, config)
    findings = drift.judge(stats, config)
    subject = subject or Subject("dataset", "inference-window", current.digest)
    severe = any(stats[c]["severe"] for c in columns)
    findings, verdict = drift.decide(findings, severe, history, subject.uri, config)
    from importlib.metadata import version

    return GateResult(
        gate=drift.GATE, status=Status.BLOCKED if verdict["blocks"] else Status.PASSED, subject=subject,
        policy_digest=policy_digest, tool=ToolInfo("datasketches", version("datasketches")),
        started_at=started, finished_at=utcnow(),
        metrics={"drifted_columns": sorted(c for c in columns if stats[c]["drifted"]), "drifted": bool(findings),
                 "severe": severe, "persistence": verdict, "columns": stats, "rows": current.rows,
                 "reference": "sketch", "rank_error": rank_error(),
                 "seconds": round(time.perf_counter() - clock, 4)},
        thresholds={**config.model_dump(mode="json"), "reference_digest": profile.digest},
        findings=tuple(findings),
    )
