"""``monitor.queries``: per-client query volume anomalies and extraction-like query patterns.

Volume: a client's query count against the other clients' typical query — the volume of the client that
sent their median query, i.e. the median weighted by queries (robust z-score, scale
``max(1.4826 * weighted MAD, sqrt(median), 1)`` so a quiet, uniform population does not turn one extra query
into an alarm) — or against the client's own baseline count where one is given (Poisson z-score).

Extraction: PRADA (Juuti et al., 2019). For each query of a client, the minimum L2 distance to that
client's growing set of earlier queries; natural queries give a roughly normal set of distances, while
synthetic queries built by small steps from a few seeds (Jacobian augmentation, line searches) give a
skewed or spiky one. A client with at least ``prada_min_queries`` queries is flagged when the Shapiro–Wilk
statistic W of its distance set is below ``prada_delta``. A constant distance set (W undefined) counts
as W = 0. Distances use the numeric feature columns as normal scores against the training reference
(``extraction.QuerySpace``), which is mandatory: scaled by the window it judges (its covariance), a
client's distances depended on who else was in the window and near-constant features blew up (289 of 300
natural digit clients flagged, ``benchmarks/extraction.py``). The scores are projected on the reference's
principal directions carrying 90 % of their variance, each at unit variance (``QuerySpace.distance_space``).

Out-of-distribution evidence (``extraction``: a query far from the reference's centre, or off its principal
subspace, ADR 0058), against the same reference: per client, cumulative over windows, pooled across keys, and
summed over a crowd of mostly-OOD keys with one or two queries each (ADR 0062); this is what catches paced and
split attackers, who stay under any volume or per-window threshold. Volume alone flags only far outliers
(``max_volume_z``): natural traffic is heavy-tailed, and a paced attacker is not an outlier.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from mlgate.core.errors import GateInputError
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow
from mlgate.gates.monitor.extraction import ExtractionState, QuerySpace, extraction_evidence
from mlgate.gates.monitor.inference_log import RESERVED
from mlgate.gates.monitor.policies import QueriesPolicy

if TYPE_CHECKING:
    import pandas as pd

GATE = "monitor.queries"


def prada_distances(x: np.ndarray) -> np.ndarray:
    """PRADA's distance set: each query's minimum L2 distance to the client's growing set of queries.

    A query joins the growing set only when its distance exceeds ``T = max(T, mean - std)`` of the
    distances of the queries that joined before (Juuti et al., Algorithm 1, one set per client); this
    keeps natural query streams close to normal where plain nearest-neighbour distances are skewed.
    """
    grown = np.empty_like(x)
    grown[0], size = x[0], 1
    joined: list[float] = []
    threshold = 0.0
    distances = np.empty(len(x) - 1)
    for i in range(1, len(x)):
        distance = float(np.sqrt(((grown[:size] - x[i]) ** 2).sum(axis=1).min()))
        distances[i - 1] = distance
        if distance > threshold:
            grown[size], size = x[i], size + 1
            joined.append(distance)
            threshold = max(threshold, float(np.mean(joined) - np.std(joined)))
    return distances


def prada_statistic(x: np.ndarray) -> float:
    """Shapiro–Wilk W of the client's PRADA distance set (0 for a constant set).

    A query that repeats one of the client's earlier queries exactly is left out: it teaches a thief
    nothing, and natural clients repeat themselves (the same case scored again), whose zero distances made
    natural distance sets spiky (W < 0.75 for 2.5 % of natural digit clients; none once left out)."""
    from scipy.stats import shapiro

    _, first = np.unique(x, axis=0, return_index=True)
    x = x[np.sort(first)]
    if len(x) < 3:
        return 0.0
    distances = prada_distances(x)
    if np.ptp(distances) <= 1e-12 * max(1.0, float(distances.max())):
        return 0.0
    return float(shapiro(distances).statistic)


def volume_z(counts: pd.Series, baseline: Mapping[str, float] | None = None) -> pd.Series:
    """Per-client z-score of query counts: Poisson vs the client's baseline, else robust vs the other clients
    (``_typical``). Clients holding under 1 % of the window's queries are judged against all clients: leaving one
    out moves the query-weighted median by at most its share, and such a client is no outlier of volume."""
    import pandas as pd

    volumes = counts.to_numpy(dtype=np.float64)
    centre, scale = _typical(volumes)
    z = pd.Series((volumes - centre) / scale, index=counts.index)
    for i in np.flatnonzero(volumes >= 0.01 * volumes.sum()):
        others = np.delete(volumes, i)
        centre, scale = _typical(others) if others.size else (volumes[i], 1.0)
        z.iloc[i] = (volumes[i] - centre) / scale
    for client, expected in (baseline or {}).items():
        if client in counts.index:
            z[client] = (counts[client] - expected) / max(np.sqrt(expected), 1.0)
    return z


def _typical(volumes: np.ndarray) -> tuple[float, float]:
    """The volume of the client that sent the median query (the median weighted by queries) and its scale,
    ``max(1.4826 · weighted MAD, √median, 1)``. Weighted by queries, a crowd of quiet keys cannot pull the
    baseline down (redteam7: 150 keys of 2 queries made 24 of 24 natural clients volume outliers); ``volume_z``
    leaves the client out, so a scraper sending most of the window does not set its own baseline."""
    def weighted_median(values: np.ndarray) -> float:
        order = np.argsort(values)
        cumulative = np.cumsum(volumes[order])
        return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])

    median = weighted_median(volumes)
    return median, max(1.4826 * weighted_median(np.abs(volumes - median)), float(np.sqrt(median)), 1.0)


def feature_columns(window: pd.DataFrame, config: QueriesPolicy) -> list[str]:
    import pandas as pd

    return list(config.columns) if config.columns is not None else [
        c for c in window.columns if c not in RESERVED and pd.api.types.is_numeric_dtype(window[c])
        and not pd.api.types.is_bool_dtype(window[c])]


def _features(window: pd.DataFrame, columns: list[str]) -> np.ndarray:
    missing = [c for c in columns if c not in window.columns]
    if missing or not columns:
        raise GateInputError(f"query features: columns {missing or 'none'} not in the window; "
                             "PRADA needs numeric feature columns")
    try:
        x = window[columns].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise GateInputError(f"query features {columns} must be numeric") from None
    if not np.isfinite(x).all():
        raise GateInputError("query features hold missing or infinite values")
    return x


def require_clients(window: pd.DataFrame) -> None:
    """Refuse a window with no query, a column named twice or a query without a client id."""
    from mlgate.gates.monitor.drift import require_unique_columns

    require_unique_columns(window, "the query window")
    if "client_id" not in window.columns or window.empty:
        raise GateInputError("the query window is empty or has no client_id column")
    if window["client_id"].isna().any() or window["client_id"].astype(str).str.strip().eq("").any():
        raise GateInputError("the query window holds queries without a client_id (missing, empty or blank)")


def check_queries(window: pd.DataFrame, config: QueriesPolicy, policy_digest: str,
                  baseline: Mapping[str, float] | None = None, subject: Subject | None = None,
                  space: QuerySpace | None = None, state: ExtractionState | None = None,
                  per_window: bool = True) -> GateResult:
    """Flag clients with anomalous volume or extraction-like query sequences; BLOCKED when any is flagged.

    ``window`` is an inference-log window (``read_window``): ``client_id``, optional ``timestamp`` (the
    query order) and the feature columns. ``baseline`` maps client ids to their expected query count.
    ``space``: the training reference's query space (required: ``GateInputError`` without it); ``state``: the evidence
    of earlier windows, updated in place with this one (without it, the window is judged alone).
    ``per_window=False`` leaves out the tests that judge the window alone (volume, PRADA): each has a fixed
    false-alarm rate per window, which short, frequent windows multiply (5-minute windows over 6 hours
    flagged 2 of 300 natural clients by those tests, none by the cumulative OOD evidence).
    """
    import scipy

    from mlgate.gates.monitor.drift import window_digest

    started, clock = utcnow(), time.perf_counter()
    if space is None:
        raise GateInputError(f"{GATE} needs the training reference (a QuerySpace): distances scaled by the "
                             "window being judged depend on the other clients in it")
    require_clients(window)
    ordered = window.sort_values("timestamp", kind="stable") if "timestamp" in window.columns else window
    raw = _features(ordered, list(space.columns))
    x = space.distance_space(raw)
    clients = ordered["client_id"].astype(str).to_numpy()
    counts = ordered["client_id"].astype(str).value_counts()
    z = volume_z(counts, baseline)
    flagged: dict[str, dict[str, Any]] = {}
    findings = []
    for client in sorted(z.index[z > config.max_volume_z]) if per_window else ():
        flagged[client] = {"queries": int(counts[client]), "volume_z": round(float(z[client]), 3)}
        findings.append(Finding(f"{GATE}.volume", Severity.HIGH,
                                f"{counts[client]} queries, robust z-score {z[client]:.2f} above "
                                f"{config.max_volume_z}", f"client {client}"))
    tested = 0
    for client in sorted(counts.index[counts >= config.prada_min_queries]) if per_window else ():
        w = prada_statistic(x[clients == client][-config.prada_max_queries:])
        tested += 1
        if w < config.prada_delta:
            flagged.setdefault(client, {"queries": int(counts[client])})["prada_w"] = round(w, 4)
            findings.append(Finding(f"{GATE}.extraction", Severity.HIGH,
                                    f"PRADA: Shapiro-Wilk W {w:.3f} of minimum query distances below "
                                    f"{config.prada_delta}", f"client {client}"))
    state = state if state is not None else ExtractionState()
    state.add(subject.uri if subject else window_digest(window), clients, space.ood(raw))
    evidence = extraction_evidence(state, 1 - config.ood_quantile, config.ood_alpha, config.sybil_min_ood,
                                   config.ood_margin, config.crowd_min_share)
    for client, e in sorted(evidence.items()):
        if not (e["flagged_alone"] or e.get("flagged_in_group") or e.get("flagged_in_crowd")):
            continue
        flagged.setdefault(client, {"queries": int(counts.get(client, 0))})["ood"] = e
        how = f"(p {e['p_value']:.3g})" if e["flagged_alone"] else \
            f"with {len(e['group'])} keys pooled (p {e['group_p_value']:.3g})" if e.get("flagged_in_group") else \
            f"in a crowd of {e['crowd_keys']} keys with {e['crowd_ood']} OOD queries (p {e['crowd_p_value']:.3g})"
        findings.append(Finding(f"{GATE}.ood", Severity.HIGH,
                                f"{e['ood']} of {e['queries']} queries since window {e['first']} out of the "
                                f"training distribution, tested against {config.ood_margin:g} x the natural share "
                                f"{1 - config.ood_quantile:.3g} {how}",
                                f"client {client}"))
    return GateResult(
        gate=GATE,
        status=Status.BLOCKED if findings else Status.PASSED,
        subject=subject or Subject("dataset", "inference-window", window_digest(window)),
        policy_digest=policy_digest,
        tool=ToolInfo("mlgate.queries", f"scipy {scipy.__version__}"),
        started_at=started,
        finished_at=utcnow(),
        metrics={"flagged_clients": sorted(flagged), "flagged": flagged, "clients": int(counts.size),
                 "queries": len(window), "median_queries": float(counts.median()), "prada_tested": tested,
                 "extraction": evidence,
                 "seconds": round(time.perf_counter() - clock, 4)},
        thresholds={**config.model_dump(mode="json"), "baseline_clients": len(baseline or {})},
        findings=tuple(findings),
    )
