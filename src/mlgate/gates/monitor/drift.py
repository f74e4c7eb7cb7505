"""``monitor.drift``: data drift per feature and concept drift (accuracy), decided by *significant and large*.

The reference is either a raw sample (a DataFrame) or a ``ReferenceProfile``: quantile cut points and bin
counts per numeric column, category counts per categorical column. A profile is what a differentially
private release provides, so the monitoring store never needs to hold raw training rows.

A column drifts only when both hold (ADR 0019):

- **significant**: its two-sample test has a corrected p-value below ``alpha``. For categories χ²; for
  numbers three tests, combined by a weighted Bonferroni (``min(p_KS / 0.3, p_location / 0.6, p_scale / 0.1)``):
  Kolmogorov–Smirnov, which sees any change of shape but is weak for a pure shift, and two normal-scores
  tests on the reference-quantile groups (``normal_scores_pvalue``): van der Waerden's location statistic
  (as powerful as a t-test on normal data; at 500 rows and 1 % false alarms 0.2σ was caught in 36 of 40
  windows, KS 29, ADR 0053) and Klotz's scale statistic (KS hardly sees spread: ×1.3 at 500 rows 0 of 5
  windows, ADR 0047). Alone, a test alarms on large windows for shifts nobody cares about (KS adjusted
  p 0.02 with PSI 0.0009 at 50,000 rows).
- **large**: its effect size reaches the policy minimum (``min_wasserstein`` / ``min_total_variation``). The
  effect is the Wasserstein distance in reference standard deviations (numbers) or the total variation
  distance (categories). The test alone bounds the false alarms at every window size (its null distribution
  at the window's size is known); the minimum only keeps a significant but negligible shift of a large window
  from counting. The effect is not also held to its own null quantile at the window's size (ADR 0053): that
  second test at level ``alpha`` took power, not false alarms (×1.2 scale at 500 rows, same 40 windows:
  12 caught with it, 35 without; healthy 0/200 and 1/200).

A column's missing share is tested too, as a test of its own in the same corrected family (ADR 0059): Fisher's
exact test on (missing, present) × (reference, window), significant at the corrected ``alpha`` and large when
the share moved by ``min_total_variation`` (the total variation of the missing indicator), severe at
``severe_total_variation``. Every other test drops missing values, so without it half of a column turning
null passed. A reference that records no null count for a tested column is refused.

A drifted column whose effect reaches ``severe_wasserstein`` / ``severe_total_variation`` is *severe*. The
gate's verdict (``persistence``) blocks at once on a severe column, and otherwise only when at least
``demote_after`` of the last ``of_last`` windows drifted, so one unlucky window does not demote the model.

Numeric columns are counted into fine bins in one O(n) pass per sample. Against a sample, the
Kolmogorov–Smirnov statistic is then *exact*: the binned CDFs give a lower bound and, per bin, an upper
bound, and only the few bins whose upper bound beats the lower bound are sorted and searched
(``ks_method="exact"``). Against a profile, only the binned CDFs exist, so KS is evaluated at the
profile's cut points: a lower bound of the true statistic, hence a conservative test
(``ks_method="binned"``). p-values are Smirnov's asymptotic ones on the effective sample size, as
``scipy.stats.ks_2samp(mode="asymp")`` computes them. Effects and PSI (reported, not decisive) come from
the same counts, grouped into ``bins`` reference-quantile groups; the Wasserstein distance is integrated
between the groups' inner edges (the open-ended outer groups have no width).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from mlgate.core.digests import json_digest
from mlgate.core.errors import GateInputError
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow
from mlgate.gates.monitor.extraction import OodCalibration, calibrate, ood_edges
from mlgate.gates.monitor.inference_log import RESERVED
from mlgate.gates.monitor.policies import DriftPolicy

if TYPE_CHECKING:
    import pandas as pd

GATE = "monitor.drift"
_FINE_BINS = 1 << 16
_KSTWO_MAX_N = 10_000
_PSI_FLOOR = 1e-4  # proportion used for an empty bin, so PSI stays finite
# weighted Bonferroni over a numeric column's three tests (ADR 0047, 0053): the location test gets 60 % of the
# level (a mean shift is the common drift; at 500 rows and 1 % false alarms 0.2 sigma went from 29/40 with KS
# at 90 % to 36/40), KS 30 % for changes of shape the normal scores miss, the scale test 10 %, which a change
# of spread clears by orders of magnitude (x1.3 at 500 rows: z ~ 9, p ~ 1e-19)
_WEIGHTS = {"ks": 0.3, "location": 0.6, "scale": 0.1}
OTHER = "__other__"  # a profile's cell for every category it does not list (a DP release's "other")


@dataclass(frozen=True)
class ReferenceProfile:
    """Binned reference: ``numeric[col] = (cuts, counts)`` with ``len(counts) == len(cuts) + 1``.

    Bin ``i`` holds the values in ``(cuts[i-1], cuts[i]]`` (the outer bins are open-ended), so the
    reference CDF is known exactly at every cut. Counts may be non-integers (a noisy DP release).
    A categorical column with an ``OTHER`` cell lists only some categories: the current window's
    unlisted categories are counted in that cell. ``nulls[col]``: the column's missing values, on the
    counts' scale; a profile made before ADR 0059 has none, and the gate refuses to test such a column.
    ``ood``: how the profile's own rows score as ``monitor.queries`` scores a query (ADR 0066); without it the
    profile is no reference for that gate. ``query_space``: the training rows' query space (``extraction.
    space_record``), which ``monitor.queries`` prefers to the marginals when the release carries one (ADR 0067).
    """

    numeric: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    categorical: dict[str, dict[str, float]] = field(default_factory=dict)
    accuracy: float | None = None
    labelled: int = 0
    nulls: dict[str, float] = field(default_factory=dict)
    ood: OodCalibration | None = None
    query_space: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": {c: {"cuts": cuts.tolist(), "counts": counts.tolist()}
                            for c, (cuts, counts) in sorted(self.numeric.items())},
                "categorical": {c: dict(sorted(v.items())) for c, v in sorted(self.categorical.items())},
                "nulls": dict(sorted(self.nulls.items())), "accuracy": self.accuracy, "labelled": self.labelled,
                **({"ood": self.ood.to_dict()} if self.ood else {}),
                **({"query_space": self.query_space} if self.query_space is not None else {})}

    @property
    def digest(self) -> str:
        return json_digest(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        try:
            numeric = {str(c): (np.asarray(v["cuts"], dtype=np.float64), np.asarray(v["counts"], np.float64))
                       for c, v in data.get("numeric", {}).items()}
            categorical = {str(c): {str(k): float(n) for k, n in v.items()}
                           for c, v in data.get("categorical", {}).items()}
            nulls = {str(c): float(n) for c, n in data.get("nulls", {}).items()}
            ood = OodCalibration.from_dict(data["ood"]) if data.get("ood") is not None else None
            space = data.get("query_space")
            if space is not None and not isinstance(space, Mapping):
                raise TypeError("query_space must be an object")
            profile = cls(numeric, categorical, data.get("accuracy"), int(data.get("labelled", 0)), nulls, ood,
                          None if space is None else dict(space))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise GateInputError(f"not a valid reference profile: {exc!r}") from None
        if ood is not None and (uncounted := sorted(set(ood.columns) - set(numeric))):
            raise GateInputError(f"reference profile: its out-of-distribution calibration counts columns "
                                 f"{uncounted} it does not profile")
        if bad := sorted(c for c, n in nulls.items() if c not in numeric and c not in categorical
                         or not (math.isfinite(n) and n >= 0)):
            raise GateInputError(f"reference profile nulls {bad}: a null count must be a finite, non-negative "
                                 "number of a profiled column")
        for column, (cuts, counts) in numeric.items():
            if (counts.shape != (cuts.size + 1,) or np.any(np.diff(cuts) <= 0) or not np.isfinite(cuts).all()
                    or np.any(counts < 0) or counts.sum() <= 0):
                raise GateInputError(f"reference profile column {column}: cuts must be finite and strictly "
                                     "increasing, counts non-negative with one more entry than cuts")
        for column, counts in categorical.items():
            if any(n < 0 for n in counts.values()) or sum(counts.values()) <= 0:
                raise GateInputError(f"reference profile column {column}: category counts must be "
                                     "non-negative and not all zero")
        return profile


def _is_numeric(series: pd.Series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _numeric_values(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, int]:
    """The column's values as floats, and how many were missing (NaN, None, NA)."""
    try:
        values = np.asarray(frame[column], dtype=np.float64)
    except (TypeError, ValueError):
        raise GateInputError(f"column {column}: expected numeric values") from None
    nan = np.isnan(values)
    return (values[~nan], int(nan.sum())) if nan.any() else (values, 0)


def _category_counts(series: pd.Series) -> tuple[dict[str, float], int]:
    """Counts per category (as text), and how many values were missing."""
    missing = series.isna()
    counts = series[~missing].astype(str).value_counts()
    return {str(k): float(v) for k, v in counts.items()}, int(missing.sum())


def _fold_unlisted(cur: dict[str, float], ref: dict[str, float]) -> dict[str, float]:
    """Counts of the categories ``ref`` lists, and of all others in its ``OTHER`` cell."""
    folded = {k: v for k, v in cur.items() if k in ref and k != OTHER}
    folded[OTHER] = sum(v for k, v in cur.items() if k not in folded)
    return folded


def _accuracy(frame: pd.DataFrame) -> tuple[float, int] | None:
    if "label" not in frame.columns or "prediction" not in frame.columns:
        return None
    labelled = frame[frame["label"].notna()]
    if labelled.empty:
        return None
    hits = _same(labelled["label"], labelled["prediction"])
    return float(hits.mean()), int(hits.size)


def _same(labels: pd.Series, predictions: pd.Series) -> np.ndarray:
    """Label == prediction, numerically when both are numbers (JSON may give 1 and 1.0), else as text."""
    import pandas as pd

    numbers = [pd.to_numeric(s, errors="coerce") for s in (labels, predictions)]
    if not any(n.isna().any() for n in numbers):
        return (numbers[0] == numbers[1]).to_numpy()
    return (labels.astype(str) == predictions.astype(str)).to_numpy()


def profile_from_sample(frame: pd.DataFrame, bins: int = 100, columns: list[str] | None = None
                        ) -> ReferenceProfile:
    """A raw sample's profile: ``bins`` quantile bins per numeric column — the minimum and maximum among the
    cuts, so the profile knows each column's range (``monitor.queries`` scores beyond it as far, ADR 0063) —
    counts per category, and the ``OodCalibration`` of its rows."""
    if bins < 2:
        raise GateInputError(f"bins must be at least 2, found {bins}")
    require_unique_columns(frame, "the sample to profile")
    numeric, categorical, nulls = {}, {}, {}
    for column in columns or [c for c in frame.columns if c not in RESERVED]:
        if _is_numeric(frame[column]):
            values, nulls[column] = _numeric_values(frame, column)
            if values.size == 0:
                raise GateInputError(f"column {column}: no values to profile")
            cuts = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
            counts = np.bincount(np.searchsorted(cuts, values, side="left"), minlength=cuts.size + 1)
            numeric[column] = (cuts, counts.astype(np.float64))
        else:
            categorical[column], nulls[column] = _category_counts(frame[column])
    accuracy = _accuracy(frame)
    profile = ReferenceProfile(numeric, categorical, *(accuracy or (None, 0)), {c: float(n) for c, n in nulls.items()})
    return replace(profile, ood=_calibration(profile, frame)) if numeric else profile


def _calibration(profile: ReferenceProfile, frame: pd.DataFrame) -> OodCalibration:
    """The exact ``OodCalibration`` of a sample's profile, over its complete rows."""
    columns = list(profile.numeric)
    x = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    cells = calibrate(profile, x[np.isfinite(x).all(axis=1)], columns)
    counts = np.bincount(cells, minlength=len(ood_edges(len(columns))) + 1)
    return OodCalibration(tuple(columns), tuple(float(c) for c in counts))


# --- statistics -------------------------------------------------------------------------------------


def _group_starts(ref_counts: np.ndarray, groups: int) -> np.ndarray:
    """First bin of each of about ``groups`` runs of adjacent bins of equal reference mass."""
    cum = np.cumsum(ref_counts) / ref_counts.sum()
    ends = np.unique(np.searchsorted(cum, np.arange(1, groups) / groups, side="left")) + 1
    return np.concatenate([[0], ends[ends < ref_counts.size]])


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Population stability index of two count vectors (reported for people used to it; not decisive)."""
    p = np.maximum(ref_counts / ref_counts.sum(), _PSI_FLOOR)
    q = np.maximum(cur_counts / cur_counts.sum(), _PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def wasserstein(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray, std: float) -> float:
    """Wasserstein-1 distance in reference standard deviations ``std`` between grouped counts, the groups'
    inner edges at ``edges``.

    The CDFs are step functions between the inner edges (exact for discrete values, a Riemann sum
    otherwise). With a single inner edge (two values) it is ``|ΔF| / sqrt(F(1 - F))``, exact for a
    two-point distribution whatever the gap between its values.
    """
    ref_cdf, cur_cdf = np.cumsum(ref)[:-1] / ref.sum(), np.cumsum(cur)[:-1] / cur.sum()
    gap = np.abs(ref_cdf - cur_cdf)
    if edges.size < 2 or std <= 0:
        f = float(ref[0] / ref.sum())
        return float(gap[0] / np.sqrt(max(f * (1 - f), 1e-12)))
    return float(gap[:-1] @ np.diff(edges) / std)


def total_variation(ref: np.ndarray, cur: np.ndarray) -> float:
    """Total variation distance between two count vectors: the share of mass that moved, in [0, 1]."""
    return float(0.5 * np.abs(ref / ref.sum() - cur / cur.sum()).sum())


def ks_pvalue(statistic: float, n: float, m: float) -> float:
    """Smirnov's asymptotic two-sided p-value on the effective size ``nm / (n + m)``.

    Up to an effective size of 10,000 this is ``scipy.stats.ks_2samp(mode="asymp")``'s ``kstwo``;
    above, the limiting Kolmogorov distribution: ``kstwo`` is O(n) per call for small p-values (0.5 s at
    n = 500,000), and the limit is slightly conservative (larger p), within 2% of it there.
    """
    from scipy.special import kolmogorov
    from scipy.stats import kstwo

    effective = n * m / (n + m)
    if effective <= _KSTWO_MAX_N:
        return float(kstwo.sf(statistic, np.round(effective)))
    return float(kolmogorov(np.sqrt(effective) * statistic))


def normal_scores_pvalue(ref_groups: np.ndarray, cur_groups: np.ndarray, ref_rows: float, power: int
                         ) -> tuple[float, float]:
    """Two-sided p-value and z of the window's mean normal score (``power`` 1: van der Waerden's location
    statistic) or mean squared normal score (``power`` 2: Klotz's scale statistic) on grouped counts.

    Each reference-quantile group gets the normal score of its mid reference rank, ``Φ⁻¹(F_mid)``; the
    window's mean score (or squared score) is compared with the reference's. Under no drift it is a mean of
    bounded i.i.d. terms, Gaussian with variance ``σ² (1/m + 1/n)``, ``σ²`` the scores' reference variance.
    A shift of δσ moves the mean score by ~δ (z ≈ 4.5 for 0.2σ at 500 rows); a spread ×1.3 moves the mean
    squared score by ~0.6 (z ≈ 9). The squared scores are skewed, so the scale test's Gaussian tail is a
    little light on small windows (ADR 0053). A column without spread (one group) has nothing to test: p = 1.
    """
    from scipy.special import ndtri
    from scipy.stats import norm

    p = ref_groups / ref_groups.sum()
    scores = ndtri(np.clip(np.cumsum(p) - p / 2, 1e-12, 1 - 1e-12)) ** power
    mean = float(p @ scores)
    variance = float(p @ (scores - mean) ** 2)
    rows = float(cur_groups.sum())
    if variance <= 1e-12 or rows <= 0:
        return 1.0, 0.0
    z = (float(cur_groups @ scores) / rows - mean) / math.sqrt(variance * (1 / rows + 1 / ref_rows))
    return float(2 * norm.sf(abs(z))), z


def _bin_index(values: np.ndarray, lo: float, scale: float) -> np.ndarray:
    """Monotone map to ``_FINE_BINS`` bins: x < y implies bin(x) <= bin(y), so bins are intervals."""
    position = values - lo
    position *= scale
    np.clip(position, 0, _FINE_BINS - 1, out=position)
    return position.astype(np.intp)


def _unselected_before(counts: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Per bin j: how many values lie in bins before j that are not selected."""
    unselected = np.where(selected, 0, counts)
    return np.cumsum(unselected) - unselected


def _ks_exact(ref: np.ndarray, cur: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Exact two-sample KS statistic, the fine-bin counts of both samples and the fine bins' upper edges.

    Between bins the CDFs are known from the cumulative counts; inside a bin holding values of both
    samples, ``|F_ref - F_cur|`` is bounded by the CDFs at its edges. Only bins whose bound exceeds the
    best value found at the edges are sorted and searched, so the result equals the full-sort statistic.
    """
    probe = ref[:: max(1, ref.size // 20_000)]
    lo, hi = np.quantile(probe, [0.001, 0.999])
    if hi <= lo:
        lo, hi = float(probe.min()), float(probe.max())
    scale = (_FINE_BINS - 1) / (hi - lo) if hi > lo else 0.0
    ref_bin, cur_bin = _bin_index(ref, lo, scale), _bin_index(cur, lo, scale)
    ref_counts = np.bincount(ref_bin, minlength=_FINE_BINS)
    cur_counts = np.bincount(cur_bin, minlength=_FINE_BINS)
    n, m = ref.size, cur.size
    ref_cdf, cur_cdf = np.cumsum(ref_counts) / n, np.cumsum(cur_counts) / m
    ref_before, cur_before = ref_cdf - ref_counts / n, cur_cdf - cur_counts / m
    statistic = float(np.abs(ref_cdf - cur_cdf).max())
    bound = np.maximum(ref_cdf - cur_before, cur_cdf - ref_before)
    refine = (bound > statistic) & (ref_counts > 0) & (cur_counts > 0)
    if refine.any():
        ref_sel, cur_sel = np.sort(ref[refine[ref_bin]]), np.sort(cur[refine[cur_bin]])
        ref_offset = _unselected_before(ref_counts, refine)
        cur_offset = _unselected_before(cur_counts, refine)
        points = np.concatenate([ref_sel, cur_sel])
        point_bin = _bin_index(points, lo, scale)
        f_ref = (np.searchsorted(ref_sel, points, side="right") + ref_offset[point_bin]) / n
        f_cur = (np.searchsorted(cur_sel, points, side="right") + cur_offset[point_bin]) / m
        statistic = max(statistic, float(np.abs(f_ref - f_cur).max()))
    upper = lo + np.arange(1, _FINE_BINS) / scale if scale > 0 else np.full(_FINE_BINS - 1, lo)
    return statistic, ref_counts, cur_counts, upper


def _ks_binned(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    return float(np.abs(np.cumsum(ref_counts) / ref_counts.sum()
                        - np.cumsum(cur_counts) / cur_counts.sum()).max())


def _binned_std(cuts: np.ndarray, counts: np.ndarray) -> float:
    """A profile's standard deviation: interior bins at their midpoints, the open outer bins at their cut."""
    values = np.concatenate([[cuts[0]], (cuts[:-1] + cuts[1:]) / 2, [cuts[-1]]])
    mean = float(np.average(values, weights=counts))
    return float(np.sqrt(np.average((values - mean) ** 2, weights=counts)))


def _numeric_stats(cur: np.ndarray, reference: np.ndarray | tuple[np.ndarray, np.ndarray],
                   config: DriftPolicy) -> dict[str, Any]:
    if isinstance(reference, tuple):
        cuts, ref_counts = reference
        cur_counts = np.bincount(np.searchsorted(cuts, cur, side="left"), minlength=cuts.size + 1)
        return counts_stats(cuts, ref_counts, cur_counts, config, "binned")
    statistic, ref_counts, cur_counts, upper = _ks_exact(reference, cur)
    return _grouped_stats(statistic, "exact", ref_counts, cur_counts, upper, float(reference.size),
                          float(np.std(reference)), cur.size, config)


def counts_stats(cuts: np.ndarray, ref_counts: np.ndarray, cur_counts: np.ndarray, config: DriftPolicy,
                 method: str) -> dict[str, Any]:
    """A numeric column's statistics from counts over the reference's cuts: a binned reference profile's, or a
    merged sketch's (``sketches``), so every path decides by the same rule."""
    return _grouped_stats(_ks_binned(ref_counts, cur_counts), method, ref_counts, cur_counts, cuts,
                          float(ref_counts.sum()), _binned_std(cuts, ref_counts), round(float(cur_counts.sum())),
                          config)


def _grouped_stats(statistic: float, method: str, ref_counts: np.ndarray, cur_counts: np.ndarray,
                   upper: np.ndarray, n: float, std: float, rows: int, config: DriftPolicy) -> dict[str, Any]:
    starts = _group_starts(ref_counts, config.bins)
    ref_g, cur_g = np.add.reduceat(ref_counts, starts), np.add.reduceat(cur_counts, starts)
    effect = wasserstein(ref_g.astype(np.float64), cur_g.astype(np.float64), upper[starts[1:] - 1], std)
    ks_p = ks_pvalue(statistic, n, rows)
    location_p, location_z = normal_scores_pvalue(ref_g.astype(np.float64), cur_g.astype(np.float64), n, 1)
    scale_p, scale_z = normal_scores_pvalue(ref_g.astype(np.float64), cur_g.astype(np.float64), n, 2)
    return {"kind": "numeric", "tested": True, "test": "ks+location+scale", "ks_method": method,
            "statistic": round(statistic, 6),
            "ks_p_value": ks_p, "location_z": round(location_z, 4), "location_p_value": location_p,
            "scale_z": round(scale_z, 4), "scale_p_value": scale_p,
            "p_value": min(1.0, ks_p / _WEIGHTS["ks"], location_p / _WEIGHTS["location"],
                           scale_p / _WEIGHTS["scale"]), "effect": "wasserstein",
            "effect_size": effect, "effect_threshold": config.min_wasserstein,
            "severe_threshold": config.severe_wasserstein, "psi": round(psi(ref_g, cur_g), 6),
            "rows": int(rows), "reference_rows": n}


def _categorical_stats(cur: dict[str, float], ref: dict[str, float], config: DriftPolicy) -> dict[str, Any]:
    from scipy.stats import chi2_contingency

    # a category empty on both sides (a DP count clamped to zero, an empty OTHER cell) carries no information
    categories = sorted(c for c in set(cur) | set(ref) if cur.get(c, 0.0) + ref.get(c, 0.0) > 0)
    table = np.array([[ref.get(c, 0.0) for c in categories], [cur.get(c, 0.0) for c in categories]])
    if len(categories) < 2:
        statistic, p_value = 0.0, 1.0
    else:
        statistic, p_value = (float(x) for x in chi2_contingency(table, correction=False)[:2])
    rows = int(table[1].sum())
    return {"kind": "categorical", "tested": True, "test": "chi2", "statistic": round(statistic, 6),
            "p_value": p_value,
            "effect": "total_variation", "effect_size": total_variation(table[0], table[1]),
            "effect_threshold": config.min_total_variation,
            "severe_threshold": config.severe_total_variation, "psi": round(psi(table[0], table[1]), 6),
            "categories": len(categories), "rows": rows, "reference_rows": float(table[0].sum())}


def missing_stats(cur_missing: float, cur_rows: float, ref_missing: float, ref_rows: float, config: DriftPolicy
                  ) -> dict[str, Any]:
    """The change of a column's missing share (ADR 0059): Fisher's exact test on (missing, present) ×
    (reference, window), so its null distribution is exact at every size and share (χ² is not on a rare share:
    4 missing of 500 against 20 of 20,000 reads p 6e-6 by χ², 2.5e-3 by Fisher); the effect is ``|Δ share|``, the
    total variation distance of the missing indicator. Counts are rounded (a DP profile's are effective
    sizes). With no missing value on either side every table with these margins has p = 1, so the test
    is left out of the family (``in_family``; Tarone's rule for discrete tests) and costs no power."""
    from scipy.stats import fisher_exact

    table = np.rint([[ref_missing, ref_rows - ref_missing], [cur_missing, cur_rows - cur_missing]]).astype(np.int64)
    in_family = bool(table[:, 0].sum())
    share, reference_share = cur_missing / cur_rows, ref_missing / ref_rows
    return {"test": "fisher", "p_value": float(fisher_exact(table)[1]) if in_family else 1.0,
            "in_family": in_family, "missing": int(cur_missing), "rows": int(cur_rows), "share": round(share, 6),
            "reference_missing": round(float(ref_missing), 3), "reference_rows": round(float(ref_rows), 3),
            "reference_share": round(reference_share, 6), "effect": "missing share change",
            "effect_size": abs(share - reference_share), "effect_threshold": config.min_total_variation,
            "severe_threshold": config.severe_total_variation}


def column_stats(column: str, kind: str, values: Callable[[], dict[str, Any]], cur: tuple[float, float],
                 ref: tuple[float, float], config: DriftPolicy) -> dict[str, Any]:
    """A column's value test (``values()``) and, under ``missing``, its missing-share test; ``cur`` and
    ``ref`` are (values, missing) counts. Too few reference values is an input error. Too few window values
    leaves the value test untested (``tested: False``, p = 1 in the family): ``judge`` refuses the window
    unless the missing share drifted, which is then the reason the values are few."""
    (cur_values, cur_missing), (ref_values, ref_missing) = cur, ref
    if ref_values < config.min_rows:
        raise GateInputError(f"column {column}: {ref_values:.0f} reference values, fewer than "
                             f"min_rows={config.min_rows}")
    stats = values() if cur_values >= config.min_rows else {
        "kind": kind, "tested": False, "rows": int(cur_values), "reference_rows": float(ref_values), "p_value": 1.0}
    stats["missing"] = missing_stats(cur_missing, cur_values + cur_missing, ref_missing, ref_values + ref_missing,
                                     config)
    return stats


def require_nulls(reference: ReferenceProfile, columns: Sequence[str]) -> None:
    """Fail closed on a reference that records no null count for a tested column (made before ADR 0059):
    its missing share could not be compared, and a column turning null would pass."""
    if unknown := sorted(c for c in columns if c not in reference.nulls):
        raise GateInputError(f"the reference records no null count for column(s) {unknown} (made before "
                             "missing shares were tested, ADR 0059), so a column turning null could not be seen; "
                             "profile or sketch the reference data again, or release a new DP profile")


def adjust_pvalues(p_values: np.ndarray, method: str) -> np.ndarray:
    """Family-wise (Bonferroni, Holm) or false-discovery-rate (Benjamini–Hochberg) adjusted p-values."""
    p = np.asarray(p_values, dtype=np.float64)
    k = p.size
    if k == 0 or method == "bonferroni":
        return np.minimum(p * k, 1.0)
    order = np.argsort(p)
    ranked = p[order]
    if method == "holm":
        adjusted = np.minimum(np.maximum.accumulate(ranked * (k - np.arange(k))), 1.0)
    elif method == "bh":
        adjusted = np.minimum(np.minimum.accumulate((ranked * k / np.arange(1, k + 1))[::-1])[::-1], 1.0)
    else:
        raise GateInputError(f"unknown multiple-testing correction {method!r}")
    out = np.empty(k)
    out[order] = adjusted
    return out


def wilson_upper(successes: int, n: int, alpha: float) -> float:
    """One-sided upper Wilson score bound (level 1 - alpha) of a binomial proportion."""
    from scipy.stats import norm

    z = float(norm.ppf(1 - alpha))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(min(1.0, centre + half))


# --- the gate ---------------------------------------------------------------------------------------


def window_digest(frame: pd.DataFrame) -> str:
    """A blake3 digest of a DataFrame's column names, dtypes and values.

    Numeric columns are hashed as their raw bytes; other columns through pandas' stable value hashes.
    """
    import blake3
    import pandas as pd

    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    for column in frame.columns:
        series = frame[column]
        hasher.update(f"{column}\0{series.dtype}\0".encode())
        if isinstance(series.dtype, np.dtype) and series.dtype.kind in "biufcmM":
            hasher.update(np.ascontiguousarray(series.to_numpy()).view(np.uint8))
        else:
            hasher.update(pd.util.hash_pandas_object(series, index=False).to_numpy().view(np.uint8))
    return "blake3:" + hasher.hexdigest()


def require_unique_columns(frame: pd.DataFrame, what: str) -> None:
    """Fail closed on a table with a column name twice (a join's or a concatenation's leftover): selecting
    it yields a table, not a column, so which values were tested would be an accident (redteam7)."""
    if duplicated := sorted(set(map(str, frame.columns[frame.columns.duplicated()]))):
        raise GateInputError(f"{what}: column name(s) {duplicated} appear more than once; refusing to guess "
                             "which one to test")


def _feature_columns(current: pd.DataFrame, reference: pd.DataFrame | ReferenceProfile,
                     config: DriftPolicy) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns to test; a column missing on either side, or named twice, is an input
    error."""
    require_unique_columns(current, "the current window")
    if isinstance(reference, ReferenceProfile):
        known = {**dict.fromkeys(reference.numeric, "numeric"),
                 **dict.fromkeys(reference.categorical, "categorical")}
    else:
        require_unique_columns(reference, "the reference sample")
        known = {c: "numeric" if _is_numeric(reference[c]) else "categorical"
                 for c in reference.columns if c not in RESERVED}
    columns = list(config.columns) if config.columns is not None else sorted(known)
    missing = sorted({c for c in columns if c not in known or c not in current.columns})
    if missing:
        raise GateInputError(f"column(s) {missing} missing from the current window or the reference")
    if not columns:
        raise GateInputError("no feature columns to test for drift")
    return [c for c in columns if known[c] == "numeric"], [c for c in columns if known[c] == "categorical"]


def _column_stats(current: pd.DataFrame, reference: pd.DataFrame | ReferenceProfile, numeric: list[str],
                  categorical: list[str], config: DriftPolicy) -> dict[str, dict[str, Any]]:
    profile = isinstance(reference, ReferenceProfile)
    if profile:
        require_nulls(reference, [*numeric, *categorical])

    def numeric_column(column: str) -> dict[str, Any]:
        cur, cur_missing = _numeric_values(current, column)
        if profile:
            ref, ref_missing = reference.numeric[column], reference.nulls[column]
            ref_rows = float(ref[1].sum())
        else:
            ref, ref_missing = _numeric_values(reference, column)
            ref_rows = float(ref.size)
        return column_stats(column, "numeric", lambda: _numeric_stats(cur, ref, config), (cur.size, cur_missing),
                            (ref_rows, ref_missing), config)

    def categorical_column(column: str) -> dict[str, Any]:
        cur, cur_missing = _category_counts(current[column])
        ref, ref_missing = (reference.categorical[column], reference.nulls[column]) if profile else \
            _category_counts(reference[column])
        if OTHER in ref:
            cur = _fold_unlisted(cur, ref)
        return column_stats(column, "categorical", lambda: _categorical_stats(cur, ref, config),
                            (sum(cur.values()), cur_missing), (sum(ref.values()), ref_missing), config)

    # one thread: the work is memory-bound, and a thread pool measured slower on this 2-core machine
    return {**{c: numeric_column(c) for c in numeric}, **{c: categorical_column(c) for c in categorical}}


def _concept_drift(current: pd.DataFrame, reference: pd.DataFrame | ReferenceProfile,
                   config: DriftPolicy) -> dict[str, Any]:
    """Accuracy drop: drifted when even the upper Wilson bound of the current accuracy lies more than
    ``max_accuracy_drop`` below the reference accuracy (one-sided, level ``alpha``).

    Labels are optional and arrive late: with none, or fewer than ``min_rows``, the result says
    ``tested: False`` rather than failing the data-drift checks of the window.
    """
    cur = _accuracy(current)
    ref = (reference.accuracy, reference.labelled) if isinstance(reference, ReferenceProfile) \
        else _accuracy(reference)
    accuracy, labelled = cur or (0.0, 0)
    if labelled < config.min_rows or ref is None or ref[0] is None:
        return {"tested": False, "labelled": labelled, "drifted": False}
    upper = wilson_upper(round(accuracy * labelled), labelled, config.alpha)
    return {"tested": True, "accuracy": round(accuracy, 6), "labelled": labelled,
            "reference_accuracy": round(ref[0], 6), "accuracy_upper_bound": round(upper, 6),
            "drop": round(ref[0] - accuracy, 6),
            "drifted": bool(upper < ref[0] - config.max_accuracy_drop)}


def judge(stats: dict[str, dict[str, Any]], config: DriftPolicy) -> list[Finding]:
    """Correct every test of the window as one family (``config.correction``) and judge each: every column's
    value test, and its missing-share test where one side holds a missing value (ADR 0059). A column drifts
    (``drifted``, ``severe``) when either test does; one whose value test could not run is refused unless
    its missing share drifted."""
    parts = [(c, s, f"column {c}") for c, s in stats.items()]
    parts += [(c, s["missing"], f"column {c}, missing values") for c, s in stats.items() if s["missing"]["in_family"]]
    adjusted = adjust_pvalues(np.array([s["p_value"] for _, s, _ in parts]), config.correction)
    findings = [f for (c, s, where), p in zip(parts, adjusted, strict=True) if (f := _judge(c, s, p, where, config))]
    for column, s in stats.items():
        missing = s["missing"]
        if not missing["in_family"]:
            _judge(column, missing, 1.0, "", config)
        s["drifted"], s["severe"] = s["drifted"] or missing["drifted"], s["severe"] or missing["severe"]
    if untested := {c: s for c, s in stats.items() if not s["tested"] and not s["drifted"]}:
        raise GateInputError("; ".join(
            f"column {c}: {s['rows']} values in the current window ({s['missing']['missing']} of "
            f"{s['missing']['rows']} rows missing), fewer than min_rows={config.min_rows}"
            for c, s in untested.items()) + "; too few to test, and the missing share did not drift")
    return findings


def _judge(column: str, s: dict[str, Any], p_adjusted: float, where: str, config: DriftPolicy) -> Finding | None:
    """Mark one test's statistics significant / large / drifted / severe; its finding when it drifted."""
    if not s.get("tested", True):
        s.update(p_value_adjusted=float(p_adjusted), significant=False, large=False, drifted=False, severe=False)
        return None
    if not (np.isfinite(p_adjusted) and np.isfinite(s["effect_size"]) and np.isfinite(s["effect_threshold"])):
        raise GateInputError(f"column {column}: drift statistics are not finite (p-value {p_adjusted}, "
                             f"{s['effect']} {s['effect_size']}); refusing to judge the window")
    for key in ("effect_size", "effect_threshold"):
        s[key] = round(float(s[key]), 6)
    s["p_value_adjusted"] = float(p_adjusted)
    s["significant"] = bool(p_adjusted < config.alpha)
    s["large"] = bool(s["effect_size"] >= s["effect_threshold"])
    s["drifted"] = s["significant"] and s["large"]
    s["severe"] = s["drifted"] and bool(s["effect_size"] >= s["severe_threshold"])
    if not s["drifted"]:
        return None
    return Finding(f"{GATE}.data", Severity.CRITICAL if s["severe"] else Severity.HIGH,
                   f"{s['effect']} {s['effect_size']:.4g} >= {s['effect_threshold']:.4g}, {s['test']} adjusted "
                   f"p-value {p_adjusted:.3g} < {config.alpha}"
                   f"{', severe' if s['severe'] else ''}", where)


def persistence(history: Sequence[Mapping[str, Any]], window: str, drifted: bool, severe: bool,
                config: DriftPolicy) -> dict[str, Any]:
    """Whether this window's drift blocks: at once when severe, else when at least ``demote_after`` of the
    last ``of_last`` windows (this one included) drifted. ``history`` holds the earlier windows' outcomes
    (``{"window": name, "drifted": bool}``, oldest first); a rerun of this window replaces its entry."""
    earlier = [h for h in history if h.get("window") != window][-(config.of_last - 1):] if config.of_last > 1 else []
    considered = [*(str(h["window"]) for h in earlier), window]
    flags = [*(bool(h.get("drifted")) for h in earlier), drifted]
    windows = [w for w, hit in zip(considered, flags, strict=True) if hit]
    return {"windows": considered, "drifted_windows": windows, "severe": severe,
            "blocks": severe or (drifted and len(windows) >= config.demote_after),
            "demote_after": config.demote_after, "of_last": config.of_last}


def decide(findings: list[Finding], severe: bool, history: Sequence[Mapping[str, Any]], window: str,
           config: DriftPolicy) -> tuple[list[Finding], dict[str, Any]]:
    """The window's findings and persistence verdict: a drifted window blocks once drift persists or is
    severe; before that its findings stay, at medium severity, recorded for the next window."""
    verdict = persistence(history, window, bool(findings), severe, config)
    if findings and verdict["blocks"]:
        reason = "severe drift" if severe else \
            f"{len(verdict['drifted_windows'])} of the last {len(verdict['windows'])} windows drifted"
        findings = [*findings, Finding(f"{GATE}.persistent", Severity.HIGH,
                                       f"{reason}: {', '.join(verdict['drifted_windows'])}", "window")]
    elif findings:
        findings = [Finding(f.id, Severity.MEDIUM, f.message + " (not persistent yet)", f.location)
                    for f in findings]
    return findings, verdict


def check_drift(current: pd.DataFrame, reference: pd.DataFrame | ReferenceProfile, config: DriftPolicy,
                policy_digest: str, subject: Subject | None = None,
                history: Sequence[Mapping[str, Any]] = ()) -> GateResult:
    """Test each feature of ``current`` against ``reference``; BLOCKED when drift persists or is severe.

    ``subject`` defaults to the current window, named by its digest. ``history``: the earlier windows'
    outcomes (``persistence``); without it, a window blocks alone only when ``demote_after`` is 1 or its
    drift is severe. A drifted window that does not block yet passes with its findings at medium severity.
    """
    started, clock = utcnow(), time.perf_counter()
    if len(current) < config.min_rows:
        raise GateInputError(f"{len(current)} rows in the current window, fewer than "
                             f"min_rows={config.min_rows}; too few to test for drift")
    numeric, categorical = _feature_columns(current, reference, config)
    stats = _column_stats(current, reference, numeric, categorical, config)
    columns = list(stats)
    findings = judge(stats, config)
    concept = _concept_drift(current, reference, config)
    if concept["drifted"]:
        findings.append(Finding(
            f"{GATE}.concept", Severity.CRITICAL,
            f"accuracy {concept['accuracy']:.4f} (upper bound {concept['accuracy_upper_bound']:.4f}) vs "
            f"reference {concept['reference_accuracy']:.4f}: drop beyond {config.max_accuracy_drop}",
            "label"))
    subject = subject or Subject("dataset", "inference-window", window_digest(current))
    severe = concept["drifted"] or any(stats[c]["severe"] for c in columns)
    findings, verdict = decide(findings, severe, history, subject.uri, config)
    profile = isinstance(reference, ReferenceProfile)
    return GateResult(
        gate=GATE,
        status=Status.BLOCKED if verdict["blocks"] else Status.PASSED,
        subject=subject,
        policy_digest=policy_digest,
        tool=ToolInfo("mlgate.drift", f"numpy {np.__version__}"),
        started_at=started,
        finished_at=utcnow(),
        metrics={"drifted_columns": sorted(c for c in columns if stats[c]["drifted"]),
                 "drifted": bool(findings), "severe": severe, "persistence": verdict,
                 "columns": stats, "concept": concept, "rows": len(current),
                 "reference": "profile" if profile else "sample",
                 "seconds": round(time.perf_counter() - clock, 4)},
        thresholds={**config.model_dump(mode="json"),
                    "reference_digest": reference.digest if profile else window_digest(reference)},
        findings=tuple(findings),
    )
