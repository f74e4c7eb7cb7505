"""What the monitoring gates read, from files: windows of the inference log, tables, reference profiles.

The CLI and the operators run ``monitor.drift``, ``monitor.confidence`` and ``monitor.queries`` through
these functions, so both read the same inputs the same way. A window of the inference log is named by
its path, its bounds and the digest of its rows.

The drift reference is preferably the ``data.privacy`` gate's DP profile (``reference_from_release``):
it lets monitoring compare with the training data without keeping a single training row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from mlgate.core.errors import GateInputError
from mlgate.core.results import GateResult, Subject
from mlgate.gates.monitor.drift import OTHER, ReferenceProfile
from mlgate.gates.monitor.extraction import OodCalibration

if TYPE_CHECKING:
    import pandas as pd

    from mlgate.core.policy import Policy
    from mlgate.gates.monitor.confidence import ConfidenceBaseline

_LOG_SUFFIXES = (".jsonl",)


def reference_from_release(data: dict[str, Any]) -> ReferenceProfile:
    """The drift reference of a DP profile (``mlgate.gates.data.dp_release.DPProfile.to_dict()``).

    Numeric columns: the release's cells are ``below``, the bins ``[edges[i], edges[i+1])`` and ``above``,
    i.e. closed on the *left*, while a ``ReferenceProfile`` bin ``(cuts[i-1], cuts[i]]`` is closed on the
    right. The cuts are therefore the edges moved down by one float (``nextafter``): ``x >= edge`` exactly
    when ``x > nextafter(edge, -inf)``, so a window value lying on an edge (integer features with integer
    edges) is counted in the same bin as the release counted it. Categorical columns: the declared
    categories, and the release's ``other`` cell (undeclared values) as ``OTHER``, into which the window's
    undeclared categories are folded. Each column's ``missing`` cell is its null count (ADR 0059), scaled
    like its counts, so the missing share is the release's; a version 1 profile counted a categorical
    column's missing values in ``other`` and records none, and the gate refuses to test that column. A DP
    profile holds no accuracy, so concept drift is not tested against it.

    The counts are noisy, and the tests must not mistake the noise for drift (``_significant``,
    ``_effective``; post-processing, free of privacy cost).
    """
    from mlgate.gates.data.dp_release import CategoricalProfile, DPProfile

    profile = DPProfile.from_dict(data)
    numeric: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    categorical: dict[str, dict[str, float]] = {}
    nulls: dict[str, float] = {}
    for name, column in profile.columns.items():
        noise = profile.queries.get(f"{name}.histogram", {})
        floor, variance = _noise_level(noise)
        if isinstance(column, CategoricalProfile):
            declared = dict(zip(column.categories, map(float, column.counts), strict=True))
            counts = {c: n for c, n in declared.items() if n >= floor}  # the others' rows count as OTHER
            other = column.other + sum(n for c, n in declared.items() if c not in counts)
            counts[OTHER] = float(other) if other >= floor else 0.0
            raw = np.asarray(list(counts.values()))
            values = _effective(raw, variance)
            categorical[name] = dict(zip(counts, values.tolist(), strict=True))
        else:
            cuts, raw = _significant(np.nextafter(np.asarray(column.edges, dtype=np.float64), -np.inf),
                                     np.asarray([column.below, *column.counts, column.above], np.float64), floor)
            values = _effective(raw, variance)
            numeric[name] = (cuts, values)
        if column.missing is not None:
            nulls[name] = float(column.missing) * float(values.sum() / raw.sum())
    try:
        ood = None if profile.ood is None else OodCalibration.from_dict({
            "columns": profile.ood["columns"], "counts": profile.ood["counts"], "statistic": profile.ood["statistic"],
            "noise_sd": _noise_level(profile.queries["ood.histogram"])[1] ** 0.5})
    except (KeyError, TypeError, AttributeError) as exc:
        raise GateInputError(f"not a valid mlgate DP profile: its ood calibration: {exc!r}") from None
    return ReferenceProfile.from_dict(ReferenceProfile(numeric, categorical, nulls=nulls, ood=ood,
                                                       query_space=profile.query_space).to_dict())


def _noise_level(noise: dict[str, Any]) -> tuple[float, float]:
    """The count below which a cell may be pure noise (one-sided level 0.001), and the noise's variance."""
    scale = float(noise.get("scale", 0.0))
    if noise.get("mechanism", "laplace") == "laplace":
        return scale * float(np.log(500)), 2 * scale**2
    return 3.09 * scale, scale**2


def _significant(cuts: np.ndarray, counts: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge each cell that may hold nothing but noise into its larger neighbour (dropping the cut between).

    Releases clamp negative noise to 0, so a truly empty cell holds a few phantom rows that no window
    would match: left alone, they read as drift (PSI, JS). A merged cell's rows count in its neighbour.
    """
    cuts, counts = cuts.copy(), counts.copy()
    while counts.size > 1 and (weak := np.flatnonzero(counts < floor)).size:
        cell = int(weak[np.argmin(counts[weak])])
        left = cell > 0 and (cell == counts.size - 1 or counts[cell - 1] >= counts[cell + 1])
        into = cell - 1 if left else cell + 1
        counts[into] += counts[cell]
        counts = np.delete(counts, cell)
        cuts = np.delete(cuts, cell - 1 if left else cell)
    if counts.size < 2:
        raise GateInputError("a DP profile column holds too little beyond its noise to test against; release "
                             "it with more budget or coarser bins")
    return cuts, counts


def _effective(counts: np.ndarray, variance: float) -> np.ndarray:
    """Counts scaled to the sample size whose sampling variance matches sampling plus noise variance,
    ``n / (1 + k·var / n)`` over ``k`` cells, so KS and χ² treat the reference as the smaller sample it is."""
    total = counts.sum()
    if total <= 0:
        raise GateInputError("a DP profile column holds nothing beyond its noise to test against")
    return counts / (1 + counts.size * variance / total)


def load_reference(path: str | Path) -> ReferenceProfile | pd.DataFrame:
    """A DP profile JSON, a ``ReferenceProfile`` JSON, a window sketch JSON, or a CSV/Parquet reference sample."""
    from mlgate.gates.data.expectations import read_table

    path = Path(path)
    if path.suffix.lower() != ".json":
        return read_table(path)
    return _reference_from_json(path, _read_json(path))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise GateInputError(f"{path}: cannot read the reference: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise GateInputError(f"{path}: the reference is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise GateInputError(f"{path}: expected a reference profile object, found {type(data).__name__}")
    return data


def _reference_from_json(path: Path, data: dict[str, Any]) -> ReferenceProfile:
    if "plan_digest" in data:
        return reference_from_release(data)
    from mlgate.gates.monitor.sketches import SKETCH_KIND, load_sketch, reference_profile

    if data.get("kind") == SKETCH_KIND:  # ``mlgate sketch`` of the training data
        return reference_profile(load_sketch(path))
    if "numeric" in data or "categorical" in data:
        return ReferenceProfile.from_dict(data)
    raise GateInputError(f"{path}: neither a DP profile (data.privacy) nor a reference profile "
                         "(keys 'numeric'/'categorical')")


@dataclass(frozen=True)
class AttestedReference:
    """The training reference a verified attestation vouches for: the digest ``data.privacy`` signed for
    the DP profile it released (``DPProfile.digest``), and the model version whose attestation it is."""

    digest: str
    model: str


def attested_reference(results: Iterable[GateResult], model: str) -> AttestedReference:
    """The DP profile digest among ``model``'s attested results; ``GateInputError`` when they record none
    (promoted before data.privacy recorded it, trained without a release, or a policy without that gate)."""
    from mlgate.gates.data.privacy import GATE, PROFILE_METRIC

    digest = next((r.metrics.get(PROFILE_METRIC) for r in results if r.gate == GATE and r.passed), None)
    if not isinstance(digest, str) or not digest:
        raise GateInputError(f"the attestation of {model} records no training reference ({GATE} metric "
                             f"{PROFILE_METRIC!r}): train and promote the model again, or set the policy's "
                             "monitoring reference to 'unverified' to accept a reference nobody vouches for")
    return AttestedReference(digest, model)


def read_reference(path: str | Path, attested: AttestedReference | None
                   ) -> tuple[ReferenceProfile | pd.DataFrame, dict[str, Any]]:
    """The reference at ``path`` and what the result records about it: ``reference_verified``, a JSON
    reference's content digest (a DP profile's is ``DPProfile.digest``), the attesting version. With
    ``attested``, only the DP profile whose digest it records is accepted, digested and parsed from one read;
    anything else is a ``GateInputError`` naming the file and both digests (ADR 0060). The release kept under
    the attested digest beside ``path`` (``released_copy``) is read in its place when it exists: ``path``
    holds the newest release, which a retraining writes before its model is promoted (ADR 0065). Without
    ``attested``, any reference is read, and recorded as unverified."""
    from mlgate.core.digests import json_digest
    from mlgate.gates.data.privacy import released_copy

    path = Path(path)
    if attested is not None and (kept := released_copy(path, attested.digest)) and kept.exists():
        path = kept
    if path.suffix.lower() != ".json":
        if attested is not None:
            raise GateInputError(f"{path}: the training reference must be the DP profile attested for "
                                 f"{attested.model} ({attested.digest}); a sample is accepted only under a "
                                 "policy whose monitoring reference is 'unverified'")
        return load_reference(path), {"reference_verified": False}
    data = _read_json(path)
    digest = json_digest(data)
    if attested is None:
        return _reference_from_json(path, data), {"reference_verified": False, "reference_digest": digest}
    if digest != attested.digest:
        raise GateInputError(f"{path}: the training reference's digest {digest} is not the one {attested.model}'s "
                             f"verified attestation records ({attested.digest}): refusing a reference "
                             "nobody vouched for")
    return reference_from_release(data), {"reference_verified": True, "reference_digest": digest,
                                          "reference_attested_by": attested.model, "reference_path": str(path)}


def _with_reference(result: GateResult, evidence: dict[str, Any]) -> GateResult:
    """``result`` saying what its reference was and whether it was verified."""
    mode = "attested" if evidence["reference_verified"] else "unverified"
    return replace(result, metrics={**result.metrics, **evidence}, thresholds={**result.thresholds,
                                                                                 "reference": mode})


def _is_inference_log(path: Path) -> bool:
    if path.is_dir():
        return any(p.suffix in _LOG_SUFFIXES for p in path.iterdir())
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return "features" in pq.read_schema(path).names
        except Exception as exc:  # pyarrow raises several types for a malformed file
            raise GateInputError(f"{path}: cannot read the Parquet file: {exc}") from None
    return path.suffix in _LOG_SUFFIXES


def load_window(path: str | Path, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
    """An inference-log window (``start <= timestamp < end``; unbounded where ``None``), or a CSV/Parquet
    table holding the current data as it is."""
    import pandas as pd

    from mlgate.gates.data.expectations import read_table
    from mlgate.gates.monitor.inference_log import read_window

    path = Path(path)
    if not path.exists():
        raise GateInputError(f"{path}: no such file or directory")
    if not _is_inference_log(path):
        return read_table(path)
    return read_window(path, start or pd.Timestamp.min.tz_localize(UTC), end or pd.Timestamp.max.tz_localize(UTC))


def window_bounds(start: str | datetime | None, end: str | datetime | None, *, default_end: datetime,
                  hours: float) -> tuple[datetime, datetime]:
    """``[start, end)`` from given bounds (ISO-8601 with a time zone), else the ``hours`` ending at
    ``default_end`` (a DAG run's ``data_interval_end``, or now)."""
    end_at = parse_moment(end, "window_end") if end else default_end
    start_at = parse_moment(start, "window_start") if start else end_at - timedelta(hours=hours)
    if start_at >= end_at:
        raise GateInputError(f"the window is empty: start {start_at.isoformat()} is not before end "
                             f"{end_at.isoformat()}")
    return start_at, end_at


def parse_moment(value: str | datetime, name: str) -> datetime:
    """An aware datetime in UTC; a bound without a time zone is refused rather than guessed."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise GateInputError(f"{name} {value!r} is not an ISO-8601 date and time") from None
    if value.tzinfo is None:
        raise GateInputError(f"{name} {value.isoformat()} has no time zone; give it in UTC")
    return value.astimezone(UTC)


def load_baseline(path: str | Path) -> dict[str, float]:
    """Expected queries per client in a window: a JSON object of client id -> number."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GateInputError(f"{path}: cannot read the query baseline: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, int | float) and v >= 0 for v in data.values()):
        raise GateInputError(f"{path}: the query baseline must map client ids to non-negative numbers")
    return {str(k): float(v) for k, v in data.items()}


def _subject(path: str | Path, start: datetime | None, end: datetime | None, window: pd.DataFrame) -> Subject:
    from mlgate.gates.monitor.drift import window_digest

    bounds = f"#{start.isoformat() if start else ''}..{end.isoformat() if end else ''}" if start or end else ""
    return Subject("dataset", f"{path}{bounds}", window_digest(window))


def check_drift_files(current: str | Path, reference: str | Path, policy: Policy,
                      start: datetime | None = None, end: datetime | None = None,
                      history: str | Path | None = None, attested: AttestedReference | None = None) -> GateResult:
    """``monitor.drift`` of a window; with ``history`` (a JSON-lines file), the window's outcome joins
    the earlier ones against the same reference, and drift blocks once it persists (``persistence``).
    ``attested``: the reference must be the one it vouches for (``read_reference``)."""
    from mlgate.gates.monitor.drift import check_drift

    window = load_window(current, start, end)
    ref, evidence = read_reference(reference, attested)
    subject = _subject(current, start, end, window)
    key = ref.digest if isinstance(ref, ReferenceProfile) else f"{Path(reference).resolve()}"
    return _with_reference(_with_history(history, key, subject, lambda earlier: check_drift(
        window, ref, policy.section("monitor.drift"), policy.digest, subject, earlier)), evidence)


def check_drift_sketched(current: str | Path, reference: str | Path, policy: Policy, engine: str = "arrow",
                         master: str | None = None, session: Any = None, history: str | Path | None = None,
                         batch_rows: int | None = None, attested: AttestedReference | None = None) -> GateResult:
    """``monitor.drift`` in bounded memory: ``current`` (a file, a partitioned dataset directory, a table URI,
    or a window sketch JSON) is sketched and judged against ``reference`` (a window sketch JSON, a reference or
    DP profile, or data, which is sketched too). Data is sketched batch by batch (``arrow``) or per Spark
    partition (``spark``: Parquet only, on ``session`` or a new one on ``master``). The window is named by its
    manifest digest (a sketch file by the sketch's). ``attested``: as for ``check_drift_files``."""
    from contextlib import nullcontext
    from functools import partial

    from mlgate.gates.data.integrity import build_manifest
    from mlgate.gates.data.sources import redacted
    from mlgate.gates.monitor.sketches import check_drift_sketch, is_sketch_file, reference_profile, sketch_inputs

    if engine == "spark":
        from mlgate.gates.data.spark_source import spark_session
        from mlgate.gates.monitor.sketches_spark import sketch_spark

        running = spark_session(master, session)
    elif engine == "arrow":
        running = nullcontext()
    else:
        raise GateInputError(f"engine {engine!r}: sketched drift runs on 'arrow' or 'spark'")
    config = policy.section("monitor.drift")
    with running as spark:
        reader = None if spark is None else partial(sketch_spark, spark)
        if attested is not None or is_sketch_file(reference):
            profile, evidence = read_reference(reference, attested)
        else:
            profile = reference_profile(sketch_inputs([reference], config.columns, batch_rows, reader))
            evidence = {"reference_verified": False}
        columns = list(config.columns) if config.columns is not None else sorted({*profile.numeric,
                                                                                 *profile.categorical})
        window = sketch_inputs([current], columns, batch_rows, reader)
    digest = window.digest if is_sketch_file(current) else build_manifest(current, policy.section(
        "data.integrity").algorithm).digest
    subject = Subject("dataset", redacted(str(current)), digest)
    return _with_reference(_with_history(history, profile.digest, subject, lambda earlier: check_drift_sketch(
        window, profile, config, policy.digest, subject, earlier)), evidence)


def _with_history(history: str | Path | None, key: str, subject: Subject,
                  check: Callable[[list[dict[str, Any]]], GateResult]) -> GateResult:
    """``check`` given the earlier windows' outcomes against reference ``key``; its own outcome appended."""
    if history is None:
        return check([])
    with _locked(Path(history)) as handle:
        earlier = _read_history(handle, Path(history), key)
        result = check(earlier)
        handle.write(json.dumps({"reference": key, "window": subject.uri, "digest": subject.digest,
                                 "drifted": result.metrics["drifted"], "severe": result.metrics["severe"],
                                 "columns": result.metrics["drifted_columns"],
                                 "at": result.finished_at}, sort_keys=True) + "\n")
    return result


@contextmanager
def _locked(path: Path) -> Iterator[IO[str]]:
    """A state file, opened for appending under an exclusive lock: concurrent windows take turns."""
    import fcntl

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+", encoding="utf-8")
    except OSError as exc:
        raise GateInputError(f"{path}: cannot open the monitoring state: {exc.strerror}") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield handle


def _read_history(handle: IO[str], path: Path, key: str) -> list[dict[str, Any]]:
    """The earlier windows' outcomes against reference ``key``, oldest first; a damaged file is an error
    (fail closed: an unreadable history must not read as 'no drift before')."""
    handle.seek(0)
    entries = []
    for number, line in enumerate(handle, 1):
        try:
            entry = json.loads(line)
            if entry["reference"] == key:
                entries.append({"window": str(entry["window"]), "drifted": bool(entry["drifted"])})
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise GateInputError(f"{path}:{number}: not a drift history entry: {exc!r}") from None
    return entries


def load_confidence_baseline(path: str | Path) -> ConfidenceBaseline:
    """A confidence baseline from a JSON file of ``ConfidenceBaseline.to_dict()``."""
    from mlgate.gates.monitor.confidence import ConfidenceBaseline

    try:
        return ConfidenceBaseline.from_dict(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        raise GateInputError(f"{path}: cannot read the confidence baseline: {exc}") from None


def check_confidence_files(log: str | Path, policy: Policy, start: datetime | None = None,
                           end: datetime | None = None, *, baseline: ConfidenceBaseline) -> GateResult:
    """``monitor.confidence`` of a window against the baseline measured in validation (``served_baseline``
    reads the served model's from its attestation; ``load_confidence_baseline`` one from a file)."""
    from mlgate.gates.monitor.confidence import check_confidence

    window = load_window(log, start, end)
    if "confidence" not in window.columns:
        raise GateInputError(f"{log}: no confidence column")
    return check_confidence(window["confidence"].to_numpy(dtype=np.float64), policy.section("monitor.confidence"),
                            policy.digest, _subject(log, start, end, window), baseline)


def check_queries_files(log: str | Path, policy: Policy, start: datetime | None = None,
                        end: datetime | None = None, baseline: dict[str, float] | None = None,
                        reference: str | Path | None = None, state: str | Path | None = None,
                        per_window: bool = True, attested: AttestedReference | None = None) -> GateResult:
    """``monitor.queries`` of a window against the training ``reference`` (as for ``monitor.drift``;
    required, and with ``attested`` the one it vouches for), with OOD evidence per client accumulated in the
    JSON ``state`` file across windows when one is given. ``per_window=False``: that evidence alone
    (``queries.check_queries``)."""
    from mlgate.gates.monitor.extraction import ExtractionState, space_from_profile, space_from_sample
    from mlgate.gates.monitor.queries import check_queries, feature_columns, require_clients

    config = policy.section("monitor.queries")
    window = load_window(log, start, end)
    subject = _subject(log, start, end, window)
    if reference is None:
        raise GateInputError("monitor.queries needs the training reference (as for monitor.drift): distances "
                             "scaled by the window being judged depend on the other clients in it")
    require_clients(window)  # before the space: an empty window has no feature to build it on
    ref, evidence = read_reference(reference, attested)
    columns = feature_columns(window, config)
    space = space_from_profile(ref, columns, config.ood_quantile) if isinstance(ref, ReferenceProfile) \
        else space_from_sample(ref, columns, config.ood_quantile)
    if state is None:
        return _with_reference(check_queries(window, config, policy.digest, baseline, subject, space,
                                             per_window=per_window), evidence)
    with _locked(Path(state)) as handle:
        handle.seek(0)
        text = handle.read()
        try:
            known = ExtractionState.from_dict(json.loads(text)) if text.strip() else ExtractionState()
        except json.JSONDecodeError as exc:
            raise GateInputError(f"{state}: the extraction state is not valid JSON: {exc}") from None
        result = check_queries(window, config, policy.digest, baseline, subject, space, known, per_window)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(known.to_dict(), sort_keys=True))
    return _with_reference(result, evidence)
