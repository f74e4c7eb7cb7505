"""The statistics behind ``model.poisoning``: exact tail-count tests against a trusted reference, and the
power calculation that says whether the reference is large enough to detect the policy's minimum poison.

Both rest on one distribution-free fact. If the training rows of a label are exchangeable with the trusted
reference rows (no poison: both are draws from the same data, scored the same way), the number of training
rows scoring above the ``t``-th highest reference score follows the negative hypergeometric distribution
``NHG(n + m, n, t)`` (``n`` training rows, ``m`` reference rows), whatever the score and the data. Poisoned
rows a detector separates from clean data sit above the reference's top scores, so they add to that count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def tail_p_value(count: int, n: int, m: int, t: int) -> float:
    """P(at least ``count`` of ``n`` exchangeable training rows score above the ``t``-th highest of ``m``)."""
    from scipy.stats import nhypergeom

    return float(nhypergeom(n + m, n, t).sf(count - 1)) if count > 0 else 1.0


def levels(m: int, quantiles: tuple[float, ...]) -> tuple[int, ...]:
    """Reference ranks the tail is cut at: the ``t``-th highest score for each upper quantile (0 = the maximum)."""
    return tuple(sorted({max(1, math.ceil(q * m)) for q in quantiles}))


def _at_least(n: int, m: int, t: int) -> np.ndarray:
    """``P(count >= c)`` for ``c = 0..n+1`` under ``NHG(n + m, n, t)``."""
    from scipy.stats import nhypergeom

    pmf = nhypergeom(n + m, n, t).pmf(np.arange(n + 1))
    return np.append(np.cumsum(pmf[::-1])[::-1], 0.0)


def detection_power(clean: int, poison: int, m: int, t: int, alpha: float) -> float:
    """Chance that ``poison`` rows scoring above every reference row, among ``clean`` exchangeable rows, make
    the tail count at rank ``t`` significant at ``alpha`` — the power of an ideal detector at that cut."""
    critical = int(np.argmax(_at_least(clean + poison, m, t) <= alpha))  # smallest significant count
    return min(1.0, float(_at_least(clean, m, t)[max(critical - poison, 0)]))


@dataclass(frozen=True)
class Power:
    """Whether ``reference`` rows suffice to detect ``poison`` rows planted in one label of ``clean`` rows."""

    reference: int
    clean: int
    poison: int
    power: float
    needed: int | None  # reference rows that would reach the required power; None if none would

    @property
    def adequate(self) -> bool:
        return self.needed is not None and self.needed <= self.reference


def power_check(clean: int, poison: int, reference: int, quantiles: tuple[float, ...], alpha: float,
                required: float, limit: int = 1_000_000) -> Power:
    """The ideal detector's power with ``reference`` rows, and the fewest reference rows reaching ``required``."""
    def power(m: int) -> float:
        return max(detection_power(clean, poison, m, t, alpha) for t in levels(m, quantiles)) if poison else 0.0

    have = power(reference)
    if have >= required:
        return Power(reference, clean, poison, have, reference)
    low, high = reference, max(2 * reference, 16)
    while power(high) < required:
        if high >= limit:
            return Power(reference, clean, poison, have, None)
        low, high = high, 2 * high
    while high - low > max(1, low // 100):  # within 1%: a number to act on, not a bound to the row
        mid = (low + high) // 2
        low, high = (low, mid) if power(mid) >= required else (mid, high)
    return Power(reference, clean, poison, have, high)


def exceedances(train: np.ndarray, reference: np.ndarray, t: int) -> np.ndarray:
    """Mask of training scores above the ``t``-th highest reference score."""
    return train > np.sort(reference)[-t]
