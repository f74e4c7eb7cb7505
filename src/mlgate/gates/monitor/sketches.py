"""``monitor.drift`` over mergeable sketches (Apache DataSketches), for windows and references that do not fit
in memory: each partition, file or worker is profiled on its own and the profiles are merged.

- numeric columns: a KLL quantile sketch (``kll_doubles_sketch``); its normalized rank error (about 0.33 %
  at ``k = 1000``, with 99 % confidence) bounds how far any CDF value it reports is from the data's;
- categorical columns: a frequent-items sketch; while a column has fewer distinct values than the sketch's
  map holds, its counts are exact (no item's bounds differ), else the sketch lists what it can guarantee and
  the rest is the profile's ``OTHER`` cell.

A reference sketch becomes a ``ReferenceProfile`` (cut points at its quantiles, counts from its CDF), and the
current window's sketch is counted into the same bins, so the gate's decision is drift.py's binned path:
KS and the normal-scores location and scale tests at the cut points, the Wasserstein effect on
reference-quantile groups, the same correction, judgement and persistence rule (ADR 0019, 0041, 0053).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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


def _numeric(kind: pa.DataType) -> bool:
    return (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)) \
        and not pa.types.is_boolean(kind)


@dataclass
class WindowSketch:
    """Per column, a KLL sketch (numbers) or a frequent-items sketch (everything else), and the row count."""

    rows: int = 0
    numeric: dict[str, Any] = field(default_factory=dict)
    categorical: dict[str, Any] = field(default_factory=dict)

    def update(self, batch: pa.RecordBatch, columns: Sequence[str] | None = None) -> None:
        from datasketches import frequent_strings_sketch, kll_doubles_sketch

        for name in columns or [n for n in batch.schema.names if n not in RESERVED]:
            values = batch.column(name)
            if _numeric(values.type):
                numbers = pc.cast(pc.drop_null(values), pa.float64()).to_numpy(zero_copy_only=False)
                numbers = numbers[~np.isnan(numbers)]
                if numbers.size:
                    self.numeric.setdefault(name, kll_doubles_sketch(KLL_K)).update(numbers)
                else:
                    self.numeric.setdefault(name, kll_doubles_sketch(KLL_K))
            else:
                sketch = self.categorical.setdefault(name, frequent_strings_sketch(LG_MAX_ITEMS))
                counts = pc.value_counts(pc.drop_null(pc.cast(values, pa.string())))
                for value, count in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(),
                                        strict=True):
                    sketch.update(value, count)
        self.rows += batch.num_rows
        self._one_kind()

    def merge(self, other: WindowSketch) -> WindowSketch:
        """This sketch with ``other``'s rows added (a partition, a worker); ``other`` is left as it was."""
        for mine, theirs in ((self.numeric, other.numeric), (self.categorical, other.categorical)):
            for name, sketch in theirs.items():
                if name in mine:
                    mine[name].merge(sketch)
                else:
                    mine[name] = type(sketch).deserialize(sketch.serialize())
        self.rows += other.rows
        self._one_kind()
        return self

    def _one_kind(self) -> None:
        """A column sketched as numbers in one batch or partition and as text in another is refused: the
        numeric test would see only its numeric part (drifted rows sent as strings were never tested)."""
        if both := sorted(self.numeric.keys() & self.categorical.keys()):
            raise GateInputError(f"column(s) {both} hold numbers in some batches or partitions and text in "
                                 "others; cast them to one type before sketching")

    def to_dict(self) -> dict[str, Any]:
        def encode(sketches: dict[str, Any]) -> dict[str, str]:
            return {n: base64.b64encode(s.serialize()).decode() for n, s in sorted(sketches.items())}

        return {"kind": "mlgate.window_sketch", "rows": self.rows, "kll_k": KLL_K,
                "numeric": encode(self.numeric), "categorical": encode(self.categorical)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowSketch:
        from datasketches import frequent_strings_sketch, kll_doubles_sketch

        try:
            sketch = cls(int(data["rows"]),
                         {n: kll_doubles_sketch.deserialize(base64.b64decode(s)) for n, s in data["numeric"].items()},
                         {n: frequent_strings_sketch.deserialize(base64.b64decode(s))
                          for n, s in data["categorical"].items()})
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise GateInputError(f"not a valid window sketch: {type(exc).__name__}") from None
        sketch._one_kind()
        return sketch

    @property
    def digest(self) -> str:
        return json_digest(self.to_dict())


def sketch_batches(batches: Iterable[pa.RecordBatch], columns: Sequence[str] | None = None) -> WindowSketch:
    sketch = WindowSketch()
    for batch in batches:
        sketch.update(batch, columns)
    return sketch


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
    numeric = {}
    for name, kll in sketch.numeric.items():
        if kll.is_empty():
            raise GateInputError(f"column {name}: no values to profile")
        cuts = np.unique(np.asarray(kll.get_quantiles(np.linspace(0, 1, bins + 1)[1:-1].tolist()), np.float64))
        numeric[name] = (cuts, _binned(kll, cuts))
    categorical = {name: _category_counts(s) for name, s in sketch.categorical.items()}
    return drift.ReferenceProfile(numeric, categorical)


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
    missing = sorted(c for c in columns if c not in known or c not in (current.numeric if known.get(c) == "numeric"
                                                                        else current.categorical))
    if missing or not columns:
        raise GateInputError(f"column(s) {missing} missing from the current window or the reference"
                             if missing else "no feature columns to test for drift")
    stats = {}
    for column in columns:
        if known[column] == "numeric":
            cuts, ref_counts = profile.numeric[column]
            cur_counts = _binned(current.numeric[column], cuts)
            rows = cur_counts.sum()
            if min(rows, ref_counts.sum()) < config.min_rows:
                raise GateInputError(f"column {column}: fewer than min_rows={config.min_rows} values")
            stats[column] = drift.counts_stats(cuts, ref_counts, cur_counts, config, "sketch")
        else:
            ref, cur = profile.categorical[column], _category_counts(current.categorical[column])
            if drift.OTHER in ref:
                cur = drift._fold_unlisted(cur, ref)
            if min(sum(cur.values()), sum(ref.values())) < config.min_rows:
                raise GateInputError(f"column {column}: fewer than min_rows={config.min_rows} values")
            stats[column] = drift._categorical_stats(cur, ref, config)
    adjusted = drift.adjust_pvalues(np.array([stats[c]["p_value"] for c in columns]), config.correction)
    findings = [f for c, p in zip(columns, adjusted, strict=True) if (f := drift._judge(c, stats[c], p, config))]
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
