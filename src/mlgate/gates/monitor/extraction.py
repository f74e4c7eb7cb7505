"""Extraction evidence that survives pacing and many keys: out-of-distribution queries, counted per client
across windows and pooled across clients.

Knockoff- and Copycat-style attackers query from a pool they own (random inputs, another data set), far
from the training distribution; natural clients query from it. Each query's features are mapped to normal
scores against the *training* reference (``z = Φ⁻¹(F_ref(x))``, mid-ranks for ties): a near-constant
feature maps to 0 instead of blowing up, and a client's scores never depend on who else is in the window.
A query is out of distribution (OOD) when ``Σ z²`` (far from the centre) or, against a reference sample, the
squared residual of its scores off the reference's principal subspace (SPE: typical features in combinations
the reference does not hold) is extreme: one joint threshold, both statistics at a common quantile level,
calibrated out of fold on the reference so that a natural client's OOD share is ``1 - ood_quantile`` (1 %).

Per client, OOD and total queries accumulate over windows (``ExtractionState``): a client is flagged when a
one-sided binomial test of its cumulative OOD count against ``margin`` times the natural share has a p-value
below ``ood_alpha`` divided by the number of clients seen, so pacing only delays evidence, it never resets it.
The margin makes the flag *significant and large*: against the bare natural share, a cumulative test flags
any natural client whose OOD share is a little above it once it has sent enough queries (held-out digits
are 1.4 % OOD against a 1 % threshold: p < 1e-7 after 20,000 queries), while a thief's share is near 100 %.
Keys that each hold a little evidence (at least ``sybil_min_ood`` OOD queries, and a p-value of their own
below ``JOIN_P``) are pooled and tested together: an attack split over keys is flagged as one group.
Keys holding one or two queries each are invisible to both; the crowd test sees them (``crowd_null_tail``): the OOD
queries of the keys whose OOD share is at least ``crowd_min_share``, summed, against the exact null of that
sum over every key (each key's OOD count binomial at the tested share, given its query count), ADR 0062.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from mlgate.core.errors import GateInputError

if TYPE_CHECKING:
    import pandas as pd

    from mlgate.gates.monitor.drift import ReferenceProfile

_U_CLIP = 1e-6
# Beyond the reference's range a normal score goes on linearly, capped here so that Σz² stays finite.
_Z_CAP = 1e100
# Beyond the range, the score grows by one per this many range widths. Held-out rows beyond a fold's range are
# common in heavy-tailed features (breast cancer's areas), so a steep slope moves ordinary tail rows: 10 random
# 60/40 splits, held-out OOD share mean (max), breast cancer / digits: clamped (before) 1.49 % (2.63) / 0.97 %
# (1.39); per width 1.27 % (3.07) / 0.89 % (1.53); per 2 widths 1.54 % (3.07) / 0.92 % (1.53); per 5 widths
# 1.58 % (2.63) / 0.97 % (1.53). One held-out row is 0.44 % / 0.14 %: the differences are a row or two a split.
TAIL_WIDTHS = 5.0
# A key joins the pooled group when its own p-value is below this. The rule it replaces (OOD share at least ten
# times the natural one) let a natural client with 3 OOD queries in its first 30 join a 5-key attack's group
# and be flagged with it: 5 of 100 simulated 8-hour attacks beside 24 natural clients (breast cancer's OOD
# shares: natural 1.3 %, attack 50 %), 1 of 100 at 0.01, the attack flagged at the same query counts.
JOIN_P = 0.01
# PRADA measures distances along the principal directions of the reference's normal scores that carry this
# share of their variance, each scaled to unit variance (benchmarks/extraction.py, 300 natural clients x 6 h,
# W < 0.7 in client-hours: breast cancer 6/1781 on marginal scores, 0 here; digits 0 and 0; whitening every
# direction instead, with a variance floor of 0.1-5 % of the mean, flagged 241-281 of 300 digit clients).
# The residual off the same directions is the OOD statistic's second half (SPE, ADR 0058).
PRADA_VARIANCE = 0.9
# The reference's own OOD statistics are measured out of fold, in this many folds (each scored by CDFs and a
# principal basis fit on the others), so the threshold holds for traffic the reference never saw. Held-out
# rows, 10 random 60/40 splits, nominal 1 %: calibrated in-sample, breast cancer 2.0 % (up to 4.4 %), digits
# 1.25 % (up to 2.5 %); out of fold 1.5 % (up to 2.6 %) and 1.0 % (up to 1.4 %). ADR 0058.
OOD_FOLDS = 5
# A profile knows its CDF only between its outer cuts (a 50-bin profile: 2 % of natural values lie beyond each);
# its normal scores are extended only beyond the outer cuts widened by this many times their distance apart.
PROFILE_TAIL_MARGIN = 1.0
# A reference sample's CDF is kept at most at this many points (``_sample_cdf``); more rows are interpolated.
CDF_POINTS = 257
# The ``ood_quantile`` levels a kept query space is calibrated at (``space_record``); the policy's must be one.
SPACE_QUANTILES = (0.95, 0.98, 0.99, 0.995, 0.999)
SPACE_VERSION = 1


@dataclass(frozen=True)
class QuerySpace:
    """Each numeric feature's reference CDF, as (points, cumulative share) to interpolate; the OOD thresholds
    on ``Σ z²`` and on the residual off the reference's principal subspace (``spe``); and the principal
    directions of the reference's normal scores (None: a profile, whose scores are used as they are); where
    each feature's scores are extended beyond the reference's range (``_tails``)."""

    columns: tuple[str, ...]
    cdfs: tuple[tuple[np.ndarray, np.ndarray], ...]
    threshold: float
    tails: np.ndarray
    basis: np.ndarray | None = None
    center: np.ndarray | None = None
    spe_threshold: float = np.inf

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Normal scores against the reference, one column per feature. Beyond a feature's ``tails`` (low,
        high, spread, and the scores at low and high: ``_tails``) the score goes on from the edge's by one per
        ``spread``: a value far beyond the reference's range is far, not scored like its extreme row (redteam7:
        ``1e308`` scored like the maximum, and was in distribution)."""
        from scipy.special import ndtri

        u = np.column_stack([np.interp(x[:, j], points, shares) for j, (points, shares) in enumerate(self.cdfs)])
        z = ndtri(np.clip(u, _U_CLIP, 1 - _U_CLIP))
        low, high, spread, z_low, z_high = self.tails
        with np.errstate(over="ignore"):
            z = np.where(x > high, z_high + (x - high) / spread, np.where(x < low, z_low - (low - x) / spread, z))
        return np.clip(z, -_Z_CAP, _Z_CAP)

    def statistics(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per query, ``Σ z²`` and the squared prediction error (SPE, Q statistic): the squared residual of its
        centred normal scores off the span of the principal directions, unscaled (a near-constant direction
        adds its own small variance, it is not divided by it). ``Σ z²`` sees a query far from the centre;
        SPE one whose features each look typical but break the reference's correlations (redteam6b's thief
        who samples each feature from its own mean and spread). SPE is 0 when the principal directions span
        every feature. A profile has no principal directions: its residual is off the one direction it can
        assume, all features moving together, i.e. the spread of a query's scores around their own mean
        (ADR 0066)."""
        z = self.scores(x)
        if self.basis is None:
            return (z ** 2).sum(axis=1), ((z - z.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        if self.basis.shape[1] == self.basis.shape[0]:  # no residual: not even rounding
            return (z ** 2).sum(axis=1), np.zeros(len(z))
        r = z - self.center
        directions = self.basis / np.linalg.norm(self.basis, axis=0)
        return (z ** 2).sum(axis=1), ((r - r @ directions @ directions.T) ** 2).sum(axis=1)

    def ood(self, x: np.ndarray) -> np.ndarray:
        sum_z2, spe = self.statistics(x)
        return (sum_z2 > self.threshold) | (spe > self.spe_threshold)

    def distance_space(self, x: np.ndarray) -> np.ndarray:
        """Coordinates for PRADA's distances: normal scores decorrelated by the reference. On marginal scores
        strongly correlated features count one direction many times (natural breast-cancer clients reached
        W 0.55); whitening every direction blows up the near-constant ones (digits' border pixels)."""
        z = self.scores(x)
        return z if self.basis is None else z @ self.basis


def _principal_basis(z: np.ndarray, share: float) -> np.ndarray:
    """The principal directions of ``z`` that carry ``share`` of its variance, scaled to unit variance."""
    variances, directions = np.linalg.eigh(np.atleast_2d(np.cov(z, rowvar=False)))
    variances, directions = variances[::-1], directions[:, ::-1]
    if variances[0] <= 0:
        raise GateInputError("the query reference has no variance in any feature")
    k = int(np.searchsorted(np.cumsum(variances) / variances.sum(), share)) + 1
    return directions[:, :k] / np.sqrt(variances[:k])


def _tails(cdfs: tuple[tuple[np.ndarray, np.ndarray], ...], margin: float) -> np.ndarray:
    """Per feature (rows low, high, spread, the scores at low and high): where the reference's known range
    ends, widened by ``margin`` times its width, and the spread that extends the normal score beyond it:
    ``TAIL_WIDTHS`` range widths, at least ``1e-9`` of the feature's magnitude (a constant feature: any other
    value is far, as a pixel never inked in the reference). The scores at low and high point outward (at most 0
    and at least 0): a profile's CDF at its lowest cut is the share at the minimum, above one half for a column
    mostly at its minimum (28 of digits' 64 pixels), and a score going on from there *down* crossed 0, so a
    pixel 137 below its range of 0-13 scored 0 (redteam8)."""
    from scipy.special import ndtri

    out = np.empty((5, len(cdfs)))
    for j, (points, shares) in enumerate(cdfs):
        width = points[-1] - points[0]
        floor = 1e-9 * max(1.0, abs(points[0]), abs(points[-1]))
        out[:, j] = (points[0] - margin * width, points[-1] + margin * width,
                     max(TAIL_WIDTHS * width, floor), shares[0], shares[-1])
    out[3:] = ndtri(np.clip(out[3:], _U_CLIP, 1 - _U_CLIP))
    out[3], out[4] = -np.abs(out[3]), np.abs(out[4])
    return out


def _sample_cdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and their mid-rank CDF ``(F(x-) + F(x)) / 2`` (a constant feature sits at 0.5), at most
    ``CDF_POINTS`` of them: the minimum, the maximum and the first value at or above each of evenly spaced shares,
    linear between. A query space is kept and attested as a file (ADR 0067): every distinct value would be the
    column itself."""
    points, counts = np.unique(values, return_counts=True)
    cum = np.cumsum(counts) / values.size
    shares = cum - counts / (2 * values.size)
    if points.size > CDF_POINTS:
        keep = np.unique(np.r_[0, np.searchsorted(cum, np.linspace(0, 1, CDF_POINTS)[1:-1]), points.size - 1])
        points, shares = points[keep], shares[keep]
    return points, shares


def _fit(x: np.ndarray, columns: tuple[str, ...]) -> QuerySpace:
    """CDFs, principal basis and centre of the rows ``x``, thresholds not yet set."""
    cdfs = tuple(_sample_cdf(x[:, j]) for j in range(x.shape[1]))
    space = QuerySpace(columns, cdfs, np.inf, tails=_tails(cdfs, 0.0))
    z = space.scores(x)
    return replace(space, basis=_principal_basis(z, PRADA_VARIANCE), center=z.mean(axis=0))


def joint_thresholds(statistics: np.ndarray, quantile: float) -> tuple[float, ...]:
    """Thresholds, one per column of ``statistics`` (reference rows x statistics), each at one common quantile
    level ``L`` of its column: a row is out when any statistic exceeds its own, i.e. when the largest of its
    ranks exceeds ``L``. ``L`` is the lowest level (bisected) at which at most ``1 - quantile`` of the rows are
    out; a column with ties (a residual that is 0 everywhere) never puts a row out by itself."""
    def at(level: float) -> np.ndarray:
        return np.quantile(statistics, level, axis=0, method="higher")

    low, high = 0.0, 1.0
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if (statistics > at(middle)).any(axis=1).mean() > 1 - quantile else (low, middle)
    return tuple(float(t) for t in at(high))


def space_from_sample(reference: pd.DataFrame, columns: list[str], quantile: float) -> QuerySpace:
    """The query space of a reference sample: OOD when ``Σ z²`` or SPE is extreme, with one joint threshold
    (``joint_thresholds``) calibrated on the reference's out-of-fold statistics (``OOD_FOLDS``); the CDFs and
    the basis used at run time are fit on every row."""
    x = _complete_rows(reference, columns)
    threshold, spe_threshold = joint_thresholds(_held_out(x, tuple(columns)), quantile)
    return replace(_fit(x, tuple(columns)), threshold=threshold, spe_threshold=spe_threshold)


def _complete_rows(reference: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The reference's rows of ``columns`` without a missing value, at least 100 of them."""
    from mlgate.gates.monitor.drift import require_unique_columns

    require_unique_columns(reference, "the query reference")
    try:
        x = reference[columns].to_numpy(dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise GateInputError(f"the query reference lacks numeric columns {columns}") from None
    x = x[np.isfinite(x).all(axis=1)]
    if len(x) < 100:
        raise GateInputError(f"the query reference holds {len(x)} complete rows; at least 100 are needed")
    return x


def _held_out(x: np.ndarray, columns: tuple[str, ...]) -> np.ndarray:
    """Per row of ``x``, its ``Σ z²`` and SPE scored by a space fit on the other folds (``OOD_FOLDS``)."""
    fold = np.random.default_rng(0).permutation(len(x)) % OOD_FOLDS  # the reference's order may be sorted
    held_out = np.empty((len(x), 2))
    for k in range(OOD_FOLDS):
        held_out[fold == k] = np.column_stack(_fit(x[fold != k], columns).statistics(x[fold == k]))
    return held_out


def space_record(reference: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    """A reference sample's query space as JSON, to be kept and attested instead of the sample (ADR 0067): each
    feature's CDF (``_sample_cdf``: at most ``CDF_POINTS`` points), the principal directions and centre of the
    normal scores, and the joint thresholds ``space_from_sample`` would set, at each of ``SPACE_QUANTILES`` the
    rows can bound. No row is written, but it is not differentially private: exact values and aggregates of the
    rows (ADR 0067 says what that discloses)."""
    x = _complete_rows(reference, columns)
    held_out, space = _held_out(x, tuple(columns)), _fit(x, tuple(columns))
    assert space.basis is not None and space.center is not None  # _fit sets both
    return {"version": SPACE_VERSION, "rows": len(x), "columns": list(columns),
            "cdfs": [[points.tolist(), shares.tolist()] for points, shares in space.cdfs],
            "basis": space.basis.tolist(), "center": space.center.tolist(),
            "thresholds": {str(q): list(joint_thresholds(held_out, q)) for q in SPACE_QUANTILES
                           if len(x) * (1 - q) >= 1}}


def space_from_record(record: Mapping[str, Any], columns: list[str], quantile: float) -> QuerySpace:
    """The query space a ``space_record`` keeps, with its thresholds at ``quantile``. ``GateInputError`` when the
    record is malformed, was not calibrated at ``quantile``, or its columns are not the window's (``columns``):
    a window column it does not score would go unwatched."""
    try:
        if record["version"] != SPACE_VERSION:
            raise ValueError(f"unsupported version {record['version']!r}")
        names = tuple(str(c) for c in record["columns"])
        cdfs = tuple((np.asarray(p, dtype=np.float64), np.asarray(u, dtype=np.float64)) for p, u in record["cdfs"])
        basis = np.asarray(record["basis"], dtype=np.float64)
        center = np.asarray(record["center"], dtype=np.float64)
        thresholds = {float(q): tuple(float(t) for t in pair) for q, pair in record["thresholds"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GateInputError(f"not a valid query space: {exc!r}") from None
    d = len(names)
    if (not d or len(set(names)) != d or len(cdfs) != d or basis.ndim != 2 or basis.shape[0] != d
            or not 1 <= basis.shape[1] <= d or center.shape != (d,)
            or not (np.isfinite(basis).all() and np.isfinite(center).all())
            or any(p.ndim != 1 or p.shape != u.shape or not p.size or not np.isfinite(p).all()
                   or np.any(np.diff(p) <= 0) or np.any(np.diff(u) < 0) or u[0] <= 0 or u[-1] >= 1
                   for p, u in cdfs)
            or any(len(pair) != 2 or not all(math.isfinite(t) and t >= 0 for t in pair)
                   for pair in thresholds.values())):
        raise GateInputError("not a valid query space: one CDF per column (finite, increasing points; shares "
                             "in (0, 1), non-decreasing), a finite basis of 1 to d directions, a finite centre and "
                             "two finite, non-negative thresholds per quantile are needed")
    if quantile not in thresholds:
        raise GateInputError(f"the query space is calibrated at ood_quantile {sorted(thresholds)}, not {quantile}: "
                             "release it again, or set the policy's ood_quantile to one of them")
    if missing := [c for c in names if c not in columns]:
        raise GateInputError(f"the query window lacks the numeric feature columns {missing} the training "
                             "reference's query space scores")
    if unscored := [c for c in columns if c not in names]:  # as a profile refuses a column it lacks (redteam9)
        raise GateInputError(f"the training reference's query space does not score the window's numeric feature "
                             f"columns {unscored}: a thief could put anything there; release them too, or name "
                             "the columns monitor.queries scores in its policy")
    threshold, spe_threshold = thresholds[quantile]
    return QuerySpace(names, cdfs, threshold, tails=_tails(cdfs, 0.0), basis=basis, center=center,
                      spe_threshold=spe_threshold)


# The statistic an ``OodCalibration`` counts (a profile's residual, ``QuerySpace.statistics``); a calibration of
# another (an earlier or later scoring rule) is refused.
OOD_STATISTIC = "spread_z2"
# How far above its calibrated threshold the natural share may be estimated, in standard deviations of a DP
# calibration's noise (a threshold set on noisy counts must not let more than the nominal share through).
_CALIBRATION_Z = 2.0


def ood_edges(features: int) -> np.ndarray:
    """The cells an ``OodCalibration`` counts ``Σ z²`` in: ``2^(1/4)`` apart (a threshold is at most 19 % above
    the quantile it bounds) from ``d/8`` to ``32 d`` for ``d`` features. Fixed by ``d`` alone: a DP release may
    not fit them to the data. No finer: a DP calibration's error grows with the cells above the threshold."""
    return features * 2.0 ** (np.arange(-12, 21) / 4)


@dataclass(frozen=True)
class OodCalibration:
    """How a profile's own rows score: counts of their residual (``QuerySpace.statistics``: their scores' spread
    around their own mean) over ``columns``, scored by the profile itself, in the cells of ``ood_edges`` — below
    the first edge, ``[edges[i], edges[i+1])``, at or above the last. ``noise_sd``: each count's noise (a DP
    release's; 0 when counted exactly). A profile keeps no correlations, so no threshold derived from it alone
    holds for correlated features (the χ²_d quantile on ``Σ z²``: breast cancer's held-out rows 12-16 % above
    it, digits' 100 %); this is their measured tail instead (ADR 0066)."""

    columns: tuple[str, ...]
    counts: tuple[float, ...]
    noise_sd: float = 0.0
    statistic: str = OOD_STATISTIC

    def threshold(self, quantile: float) -> float:
        """The lowest edge above which at most ``1 - quantile`` of the rows lie, counting the noise of the
        counts above it at ``_CALIBRATION_Z`` standard deviations against the edge; ``GateInputError`` when no
        edge qualifies (too much noise for that quantile) or the rows are fewer than ``1 / (1 - quantile)``, too
        few to bound that share (a reference sample needs 100): an exact calibration of no rows put the threshold
        at the first edge, 20 rows let up to 8.6 % of breast cancer's natural rows out (1 % nominal; redteam8)."""
        edges, counts = ood_edges(len(self.columns)), np.asarray(self.counts, dtype=np.float64)
        above = np.cumsum(counts[::-1])[::-1][1:]  # rows at or above each edge
        cells = np.arange(len(edges), 0, -1)  # cells summed for each edge
        upper = above + _CALIBRATION_Z * self.noise_sd * np.sqrt(cells)
        fits = np.flatnonzero(upper <= (1 - quantile) * max(counts.sum(), 0.0))
        if not fits.size or counts.sum() * (1 - quantile) < 1:
            raise GateInputError(f"the reference's out-of-distribution calibration ({counts.sum():.0f} rows, noise "
                                 f"sd {self.noise_sd:.3g} per count) cannot bound a {1 - quantile:.3g} share of "
                                 "natural queries: release it with more rows or more epsilon for `ood`")
        return float(edges[fits[0]])

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "counts": list(self.counts), "noise_sd": self.noise_sd,
                "statistic": self.statistic}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OodCalibration:
        try:
            calibration = cls(tuple(map(str, data["columns"])), tuple(float(c) for c in data["counts"]),
                              float(data["noise_sd"]), str(data["statistic"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise GateInputError(f"not a valid out-of-distribution calibration: {exc!r}") from None
        counts = np.asarray(calibration.counts)
        with np.errstate(over="ignore", invalid="ignore"):  # counts whose total overflows set the threshold at 0
            total = counts.sum()
        if (len(counts) != len(ood_edges(len(calibration.columns))) + 1 or not np.isfinite(total)
                or not (math.isfinite(calibration.noise_sd) and calibration.noise_sd >= 0)):
            raise GateInputError("out-of-distribution calibration: one finite count per cell of its columns' "
                                 "edges, a finite total and a finite, non-negative noise_sd are needed")
        if calibration.noise_sd == 0 and (counts < 0).any():
            raise GateInputError("out-of-distribution calibration: an exact one (noise_sd 0) counts rows, and a "
                                 "count of rows cannot be negative")
        return calibration


def profile_space(profile: ReferenceProfile, columns: list[str]) -> QuerySpace:
    """The normal scores of a profile, no threshold yet: its CDF is known at its cuts (linear between), and PRADA
    measures on the scores themselves. A profile holds no correlations, so there is no principal subspace and no
    SPE: ``Σ z²`` alone is the OOD statistic here, and a thief who samples each feature from its own mean and
    spread is invisible to it (its queries are typical feature by feature; only their correlations are off,
    which a profile cannot show). ADR 0058."""
    missing = [c for c in columns if c not in profile.numeric]
    if missing:
        raise GateInputError(f"the reference profile lacks numeric columns {missing}")
    cdfs = []
    for column in columns:
        cuts, counts = profile.numeric[column]
        cdfs.append((cuts, np.cumsum(counts)[:-1] / counts.sum()))
    return QuerySpace(tuple(columns), tuple(cdfs), np.inf, tails=_tails(tuple(cdfs), PROFILE_TAIL_MARGIN))


def calibrate(profile: ReferenceProfile, x: np.ndarray, columns: list[str]) -> np.ndarray:
    """Cell per row of ``x`` (complete rows of ``columns``) of its residual against ``profile``, as an
    ``OodCalibration`` counts it: 0 below the first of ``ood_edges``, ``len(edges)`` at or above the last."""
    return np.searchsorted(ood_edges(len(columns)), profile_space(profile, columns).statistics(x)[1], side="right")


def space_from_profile(profile: ReferenceProfile, columns: list[str], quantile: float) -> QuerySpace:
    """``profile_space`` with its two thresholds, each at half of the natural share ``1 - quantile`` (a union
    bound, ADR 0066). The residual — a query's scores spread around their own mean — at the threshold its
    ``OodCalibration`` measured on the reference's own rows: correlated features move together, so the spread
    of natural rows is light-tailed where their ``Σ z²`` is not. ``Σ z²`` at a bound that holds whatever the
    features' correlation: no feature's ``z²`` beyond the χ²₁ quantile at ``(1 - quantile) / (2 d)``
    (Bonferroni), so a query far out in every feature at once is still out. A profile without a calibration
    (a DP release made before, a sketch) is refused: the χ²_d quantile it used before assumes independent
    features and flagged every natural client of both benchmark victims. Scoring fewer columns than were
    calibrated keeps the bound (a subset's spread around its own mean is no larger). A profile that carries its
    rows' query space (``space_record``, ADR 0067) is judged by that instead: joint structure, as a sample."""
    from scipy.stats import chi2

    if not columns:
        raise GateInputError("monitor.queries has no numeric feature column to score against the reference")
    if profile.query_space is not None:
        return space_from_record(profile.query_space, columns, quantile)
    calibration = profile.ood
    if calibration is None:
        raise GateInputError("the reference profile carries no calibration of its out-of-distribution statistic "
                             "(ADR 0066): release it again with the data.privacy policy's `release.ood`, or use a "
                             "profile of a sample")
    if calibration.statistic != OOD_STATISTIC:
        raise GateInputError(f"the reference's out-of-distribution calibration counts {calibration.statistic!r}, "
                             f"not {OOD_STATISTIC!r}: release it again")
    if uncalibrated := sorted(set(columns) - set(calibration.columns)):
        raise GateInputError(f"the reference's out-of-distribution calibration does not cover columns {uncalibrated}")
    half, d = (1 - quantile) / 2, len(columns)
    return replace(profile_space(profile, columns), threshold=d * float(chi2.isf(half / d, 1)),
                   spe_threshold=calibration.threshold(1 - half))


@dataclass
class ExtractionState:
    """What monitoring remembers between windows: the windows counted, and per client its cumulative
    queries, OOD queries and the first window it was seen in."""

    windows: list[str] = field(default_factory=list)
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"windows": self.windows, "clients": self.clients}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExtractionState:
        """Both keys are required (``to_dict`` writes them even when empty): another JSON written over the state
        read as an empty one and erased every client's evidence (redteam8: a DP profile published there through
        the training DAG's ``profile_path`` param)."""
        try:
            clients = {str(c): {"queries": int(v["queries"]), "ood": int(v["ood"]), "first": str(v["first"])}
                       for c, v in data["clients"].items()}
            state = cls([str(w) for w in data["windows"]], clients)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise GateInputError(f"not an extraction state: {exc!r}") from None
        if any(v["ood"] > v["queries"] or v["ood"] < 0 for v in clients.values()):
            raise GateInputError("extraction state: a client has more OOD queries than queries")
        return state

    def add(self, window: str, clients: np.ndarray, ood: np.ndarray) -> None:
        """Count a window once: a rerun of a window already counted adds nothing."""
        if window in self.windows:
            return
        self.windows.append(window)
        for client in np.unique(clients):
            mine = clients == client
            entry = self.clients.setdefault(str(client), {"queries": 0, "ood": 0, "first": window})
            entry["queries"] += int(mine.sum())
            entry["ood"] += int(ood[mine].sum())


def crowd_least(queries: np.ndarray, min_share: float) -> np.ndarray:
    """The OOD queries a key with ``queries`` queries needs to join the crowd: a share of ``min_share``, and one."""
    return np.maximum(1, np.ceil(min_share * np.asarray(queries) - 1e-9)).astype(np.int64)


def crowd_null_tail(queries: np.ndarray, observed: int, tested: float, min_share: float,
                    negligible: float) -> float:
    """``P(T >= observed)`` where ``T = Σ_k o_k 1[o_k >= max(1, min_share q_k)]``, each key's OOD count ``o_k``
    binomial(``q_k``, ``tested``) and independent: the exact null of the crowd's OOD count, by convolution
    truncated at ``observed`` (the last cell holds ``T >= observed``). A key whose chance of joining the crowd
    is below ``negligible`` (a natural with a long history almost never has a high OOD share) is left out of
    the convolution and its chance added to the tail instead (union bound): the p-value stays an upper bound."""
    from scipy.stats import binom

    if observed <= 0:
        return 1.0
    queries = np.asarray(queries, dtype=np.int64)
    joins = binom.sf(crowd_least(queries, min_share) - 1, queries, tested)
    small = joins < negligible
    dist = np.zeros(observed + 1)  # dist[t]: P(T = t) for t < observed; dist[observed]: P(T >= observed)
    dist[0] = 1.0
    for q, keys in zip(*np.unique(queries[~small], return_counts=True), strict=True):
        m = int(crowd_least(q, min_share))
        below = np.zeros(min(q, observed - 1) + 1)  # P(X = x) for x < observed
        below[m:] = binom.pmf(np.arange(m, below.size), q, tested)
        below[0] = binom.cdf(m - 1, q, tested)
        reach = binom.sf(np.maximum(m, observed - np.arange(observed)) - 1, q, tested)  # P(X >= observed - t)
        for _ in range(keys):
            dist = np.concatenate([np.convolve(dist[:observed], below)[:observed],
                                   [dist[observed] + dist[:observed] @ reach]])
    return min(1.0, float(dist[observed] + joins[small].sum()))


def extraction_evidence(state: ExtractionState, natural_share: float, alpha: float, sybil_min_ood: int,
                        margin: float = 1.0, crowd_min_share: float = 1.0) -> dict[str, dict[str, Any]]:
    """Per client: cumulative counts, the binomial p-value of its OOD count against ``margin`` times the
    natural share, and whether it is flagged alone (``p < alpha / clients``), as a member of the pooled
    group of keys with some evidence each (``sybil_min_ood`` OOD queries, own p below ``JOIN_P``), or as a
    member of the crowd: the other keys with an OOD share of at least ``crowd_min_share`` (and one OOD query),
    whose summed OOD count is tested against its exact null over every key not flagged otherwise
    (``crowd_null_tail``), at the same level."""
    from scipy.stats import binomtest

    level = alpha / max(1, len(state.clients))
    tested = min(1.0, margin * natural_share)
    evidence = {}
    for client, entry in state.clients.items():
        p = float(binomtest(entry["ood"], entry["queries"], tested, alternative="greater").pvalue) \
            if entry["queries"] else 1.0
        evidence[client] = {**entry, "ood_share": round(entry["ood"] / max(1, entry["queries"]), 4),
                            "p_value": p, "flagged_alone": p < level}
    pool = sorted(c for c, e in evidence.items() if not e["flagged_alone"] and e["ood"] >= sybil_min_ood
                  and e["p_value"] < JOIN_P)
    if len(pool) >= 2:
        ood, queries = (sum(evidence[c][k] for c in pool) for k in ("ood", "queries"))
        p = float(binomtest(ood, queries, tested, alternative="greater").pvalue)
        for client in pool:
            evidence[client].update(group=pool, group_p_value=p, flagged_in_group=p < level)
    rest = [c for c, e in evidence.items() if not (e["flagged_alone"] or e.get("flagged_in_group"))]
    queries = np.array([evidence[c]["queries"] for c in rest], dtype=np.int64)
    crowd = [c for c, least in zip(rest, crowd_least(queries, crowd_min_share), strict=True)
             if evidence[c]["ood"] >= least]
    if crowd:
        observed = sum(evidence[c]["ood"] for c in crowd)
        # keys left out of the convolution add at most a thousandth of the level to the p-value
        p = crowd_null_tail(queries, observed, tested, crowd_min_share, level * 1e-3 / len(rest))
        for client in crowd:
            evidence[client].update(crowd_keys=len(crowd), crowd_ood=observed, crowd_p_value=p,
                                    flagged_in_crowd=p < level)
    return evidence
