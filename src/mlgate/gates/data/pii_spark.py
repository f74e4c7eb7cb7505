"""``data.pii`` of a data-lake table computed by a Spark job: the streamed scan's three passes
(``pii_stream``), each a ``mapInArrow`` over the table whose partitions run the streamed scan's own per-batch
code and return counts, never cell values (ADR 0049):

1. per row group: non-empty cells, candidates and matching cells per (column, type) (``count_batch``);
2. the vote's sample: each partition takes the every-``evidence_stride``-th matching value of its row groups,
   numbered from the matches the driver counted before each row group, and returns only what the vote reads
   of it (``evidence_traits``: classes and shape);
3. the scan (``_scan_batch``) with the elected classes; per (column, type) the cells and the lowest-numbered
   examples as the findings show them (row, salted digest prefix, scheme: ``shown``).

Row numbers and row groups follow the Arrow path's order, so the sample, the examples and the verdict are
the streamed scan's by construction.
"""

from __future__ import annotations

import secrets
import time
from importlib.metadata import version
from typing import Any

import numpy as np
import pyarrow as pa

from mlgate.core.errors import ToolError
from mlgate.core.results import GateResult, ToolInfo, utcnow
from mlgate.gates.data.integrity import build_manifest
from mlgate.gates.data.pii import _EXAMPLES, Found, Shown, scan_low, shown
from mlgate.gates.data.pii_detectors import evidence_traits
from mlgate.gates.data.pii_stream import (
    Counts,
    Elected,
    _columns,
    _evidence_types,
    _scan_batch,
    count_batch,
    elected_classes,
    evidence_columns,
    in_order,
    pii_result,
    refuse_mask,
    sample_batch,
    tally,
    voting,
)
from mlgate.gates.data.policies import PiiPolicy
from mlgate.gates.data.sources import Source
from mlgate.gates.data.spark_source import Layout, Positioned, layout, map_partitions, runs, spark_session

Pair = tuple[str, str]


def _counts(config: PiiPolicy, names: list[str]):
    def work(batches: Positioned) -> list:
        by_group: dict[int, Counts] = {}
        for batch, _, groups in batches:
            for start, length, group in runs(groups):
                count_batch(batch.slice(start, length), names, config, by_group.setdefault(group, ({}, {}, {})))
        return [[group, nonempty, [[*k, n] for k, n in candidates.items()], [[*k, n] for k, n in cells.items()]]
                for group, (nonempty, candidates, cells) in by_group.items()]

    return work


def _sample(config: PiiPolicy, cells: dict[Pair, int], before: dict[Pair, dict[int, int]]):
    def work(batches: Positioned) -> list:
        done: dict[tuple[Pair, int], int] = {}
        samples: dict[Pair, list[str]] = {key: [] for key in before}
        for batch, _, groups in batches:
            for start, length, group in runs(groups):
                seen = {key: offsets[group] + done.get((key, group), 0) for key, offsets in before.items()}
                sample_batch(batch.slice(start, length), config, cells, seen, samples)
                done |= {(key, group): n - before[key][group] for key, n in seen.items()}
        types = _evidence_types(config)
        return [[*key, [evidence_traits(types[key[1]], value) for value in values]]
                for key, values in samples.items()]

    return work


def _scan(config: PiiPolicy, elected: Elected, salt: bytes):
    def work(batches: Positioned) -> dict:
        found: Found = {}
        low: Found = {}
        rows = count = 0
        scanned: dict[str, None] = {}
        skipped: dict[str, None] = {}
        for batch, numbers, _ in batches:
            columns, unscanned = _columns(batch)
            hits, numbered = _scan_batch(columns, config, elected), pa.array(numbers)
            tally(found, hits, columns, numbered)
            tally(low, scan_low(columns, config.types, hits, config.phone_regions), columns, numbered)
            scanned |= dict.fromkeys(columns)
            skipped |= dict.fromkeys(unscanned)
            rows, count = rows + batch.num_rows, count + 1
        return {"rows": rows, "batches": count, "scanned": list(scanned), "skipped": list(skipped),
                **{key: [[name, t, cells, kept] for name, by_type in shown(hits, salt, key == "low").items()
                         for t, (cells, kept) in by_type.items()] for key, hits in (("found", found), ("low", low))}}

    return work


def _elect(spark: Any, source: Source, plan: Layout, config: PiiPolicy) -> Elected:
    """Passes 1 and 2 as two jobs; the driver sums the counts and numbers each row group's first match."""
    names, project = evidence_columns(plan.schema, config)
    if not names:
        return {}
    counts: Counts = ({}, {}, {})
    by_group: dict[Pair, dict[int, int]] = {}
    groups: list[int] = []
    for part in map_partitions(spark, source, plan, _counts(config, names), project):
        for group, nonempty, candidates, cells in part:
            groups.append(group)
            for name, n in nonempty.items():
                counts[0][name] = counts[0].get(name, 0) + n
            for name, pii_type, n in candidates:
                counts[1][(name, pii_type)] = counts[1].get((name, pii_type), 0) + n
            for name, pii_type, n in cells:
                counts[2][(name, pii_type)] = counts[2].get((name, pii_type), 0) + n
                by_group.setdefault((name, pii_type), {})[group] = n
    if len(groups) != len(set(groups)):
        raise ToolError(f"{source.label}: Spark split a Parquet row group across partitions; the sample's "
                        "order cannot be reproduced")
    pairs = voting(counts)
    if not pairs:
        return {}
    order = sorted(groups)
    before = {key: dict(zip(order, np.cumsum([0] + [by_group[key].get(g, 0) for g in order])[:-1].tolist(),
                            strict=True)) for key in pairs}
    project = None if project is None else sorted({name for name, _ in pairs})
    samples: dict[Pair, list] = {key: [] for key in pairs}
    for part in map_partitions(spark, source, plan, _sample(config, counts[2], before), project):
        for name, pii_type, traits in part:
            samples[(name, pii_type)] += [(tuple(classes), shape) for classes, shape in traits]
    return elected_classes(config, counts, samples)


def _merged(parts: list[dict], key: str) -> dict[str, dict[str, tuple[int, list]]]:
    """The partitions' ``key`` lists as one: cells summed, the ``_EXAMPLES`` lowest example rows."""
    found: dict[str, dict[str, tuple[int, list]]] = {}
    for part in parts:
        for name, pii_type, cells, kept in part[key]:
            total, shown_rows = found.setdefault(name, {}).get(pii_type, (0, []))
            found[name][pii_type] = (total + cells, sorted(shown_rows + [tuple(k) for k in kept])[:_EXAMPLES])
    return found


def scan_spark(spark: Any, source: Source, config: PiiPolicy, salt: bytes) -> tuple[dict, Shown, Shown]:
    """(rows, batches, partitions, columns scanned and skipped; found and found at low confidence, as shown)
    of ``source`` on ``spark``."""
    plan = layout(source)
    elected = _elect(spark, source, plan, config)
    parts = map_partitions(spark, source, plan, _scan(config, elected, salt))
    scanned = next((p["scanned"] for p in parts if p["batches"]), [])
    skipped = next((p["skipped"] for p in parts if p["batches"]), [])
    scan = {"rows": sum(p["rows"] for p in parts), "batches": sum(p["batches"] for p in parts),
            "partitions": len(parts), "columns_scanned": scanned, "columns_skipped": skipped, "engine": "spark"}
    return scan, *(in_order(_merged(parts, key), scanned, config.types) for key in ("found", "low"))


def check_pii_spark(source: Source, config: PiiPolicy, policy_digest: str, algorithm: str = "sha256",
                    master: str | None = None, session: Any = None) -> GateResult:
    """``data.pii`` of a Parquet file or dataset by a Spark job on ``session`` or a new one on ``master``."""
    started, clock = utcnow(), time.perf_counter()
    refuse_mask(source, config)
    with spark_session(master, session) as spark:
        scan, found, low = scan_spark(spark, source, config, secrets.token_bytes(16))
    tool = ToolInfo("mlgate-pii", f"pyspark {version('pyspark')} (mapInArrow), pyarrow {pa.__version__}")
    digest = build_manifest(source.uri, algorithm).digest
    return pii_result(source, config, policy_digest, digest, found, low, scan, tool, started, clock)
