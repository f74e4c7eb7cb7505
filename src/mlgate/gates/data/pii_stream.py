"""``data.pii`` over a ``Source`` read in record batches: memory bounded by one batch, verdicts equal to the
in-memory scan of the same rows (``check_pii``).

Row-local detection runs batch by batch, rows numbered from the start of the source. Column evidence
(``ColumnEvidence``: a column judged by the share of its values passing one ID scheme) needs the whole
column, so the columns that can hold it are read first, projected to those columns only:

1. counts of non-empty cells and of matching cells, per column;
2. where the share can reach ``EVIDENCE_SHARE``: the every-``evidence_stride``-th matching value the vote is
   taken on, and the class it elects (``evidence_class``, the in-memory scan's own decision);
3. the scan, with the elected class checked cell by cell.

Only counts and the first few examples per column and type are kept, never the hits themselves.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace

import pyarrow as pa

from mlgate.core.errors import GateInputError
from mlgate.core.results import GateResult, Severity, Status, Subject, ToolInfo, utcnow
from mlgate.gates.data.integrity import build_manifest, table_manifest
from mlgate.gates.data.pii import (
    _EXAMPLES,
    GATE,
    Found,
    Shown,
    _drop_overlaps,
    scan_low,
    shown,
    shown_findings,
    string_columns,
)
from mlgate.gates.data.pii_detectors import (
    EVIDENCE_SHARE,
    ColumnEvidence,
    Traits,
    _candidates,
    _outermost,
    detectors,
    evidence_stride,
    evidence_traits,
    filled_cells,
    find_spans,
    judged_by_values,
    traits_class,
)
from mlgate.gates.data.pii_ner import add_entities, model_info
from mlgate.gates.data.pii_views import add_views
from mlgate.gates.data.policies import PiiPolicy
from mlgate.gates.data.sources import Source, dataset_files

Elected = dict[tuple[str, str], str]  # (column, type) -> the ID class the column's values elected


def _columns(batch: pa.RecordBatch) -> tuple[dict[str, pa.Array], list[str]]:
    table = pa.Table.from_batches([batch])
    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()  # nested objects become dotted columns, as in ``read_table``
    return string_columns(table)


def _evidence_types(config: PiiPolicy) -> dict[str, ColumnEvidence]:
    return {t: detectors()[t].by_values for t in config.types if detectors()[t].by_values is not None}


def _matches(values: pa.Array, evidence: ColumnEvidence) -> list[tuple[int, tuple[int, int], str]]:
    """(row, span, value) of the cells that match the evidence's whole-cell shape, in row order."""
    rows = _candidates(values, evidence.prefilter)
    return [(row, match.span("v"), match.group("v")) for row, text in
            zip(rows.to_pylist(), values.take(rows).to_pylist(), strict=True) if (match := evidence.regex.match(text))]


Counts = tuple[dict[str, int], dict[tuple[str, str], int], dict[tuple[str, str], int]]  # nonempty, candidates, cells


def evidence_columns(schema: pa.Schema, config: PiiPolicy) -> tuple[list[str], list[str] | None]:
    """The columns column evidence can judge, and the projection that reads them (None: nested, read all)."""
    if not _evidence_types(config):
        return [], None
    names = [n for n in string_columns(schema.empty_table())[0] if judged_by_values(n)]
    return names, None if any(pa.types.is_struct(f.type) for f in schema) else names


def count_batch(batch: pa.RecordBatch, names: list[str], config: PiiPolicy, counts: Counts) -> None:
    """Pass 1 over one batch: non-empty cells per column, prefilter candidates and matching cells per
    (column, type), added to ``counts``."""
    nonempty, candidates, cells = counts
    for name, values in _columns(batch)[0].items():
        if name not in names:
            continue
        nonempty[name] = nonempty.get(name, 0) + filled_cells(values)
        for pii_type, evidence in _evidence_types(config).items():
            key = (name, pii_type)
            candidates[key] = candidates.get(key, 0) + len(_candidates(values, evidence.prefilter))
            cells[key] = cells.get(key, 0) + len(_matches(values, evidence))


def voting(counts: Counts) -> set[tuple[str, str]]:
    """The (column, type) pairs whose share of candidates can reach ``EVIDENCE_SHARE``: the vote is taken."""
    nonempty, candidates, cells = counts
    return {key for key, n in candidates.items() if n and n >= EVIDENCE_SHARE * nonempty[key[0]] and cells[key]}


def sample_batch(batch: pa.RecordBatch, config: PiiPolicy, cells: dict[tuple[str, str], int],
                 seen: dict[tuple[str, str], int], samples: dict[tuple[str, str], list[str]]) -> None:
    """Pass 2 over one batch: every ``evidence_stride``-th matching value of the voting pairs (the keys of
    ``seen``: matching cells before this batch, in row order), appended to ``samples``."""
    types = _evidence_types(config)
    for name, values in _columns(batch)[0].items():
        for pii_type, evidence in types.items():
            key = (name, pii_type)
            if key not in seen:
                continue
            stride = evidence_stride(cells[key])
            for _, _, value in _matches(values, evidence):
                if seen[key] % stride == 0:
                    samples[key].append(value)
                seen[key] += 1


def elect(source: Source, config: PiiPolicy, strings: bool) -> Elected:
    """Passes 1 and 2: the class each column's values elect, for the columns column evidence can judge."""
    names, project = evidence_columns(source.schema(strings), config)
    if not names:
        return {}
    counts: Counts = ({}, {}, {})
    for batch in source.batches(project, strings):
        count_batch(batch, names, config, counts)
    pairs = voting(counts)
    if not pairs:
        return {}
    seen = dict.fromkeys(pairs, 0)
    samples: dict[tuple[str, str], list[str]] = {key: [] for key in pairs}
    for batch in source.batches(None if project is None else sorted({name for name, _ in pairs}), strings):
        sample_batch(batch, config, counts[2], seen, samples)
    return elected_classes(config, counts, {key: [evidence_traits(_evidence_types(config)[key[1]], value)
                                                  for value in values] for key, values in samples.items()})


def elected_classes(config: PiiPolicy, counts: Counts, samples: dict[tuple[str, str], list[Traits]]) -> Elected:
    """The class each voting pair's sample elects (``traits_class``, the in-memory scan's decision)."""
    nonempty, _, cells = counts
    types = _evidence_types(config)
    elected = {key: traits_class(types[key[1]], sample, cells[key], nonempty[key[0]])
               for key, sample in samples.items()}
    return {key: best for key, best in elected.items() if best is not None}


def _scan_batch(columns: dict[str, pa.Array], config: PiiPolicy, elected: Elected) -> dict:
    """``scan`` of one batch, with column evidence taken from ``elected`` instead of from the batch."""
    evidence = _evidence_types(config)
    hits = {}
    for name, values in columns.items():
        by_type = {}
        for pii_type in config.types:
            detector = detectors(config.phone_regions)[pii_type]
            found = find_spans(values, replace(detector, by_values=None), name)
            best = elected.get((name, pii_type))
            if best is not None and judged_by_values(name):
                member = evidence[pii_type].member
                for row, span, value in _matches(values, evidence[pii_type]):
                    if member(value, best):
                        found[row] = _outermost([span, *found.get(row, [])])
            by_type[pii_type] = found
        add_entities(by_type, values, config.ner, config.types)
        _drop_overlaps(by_type)
        add_views(by_type, values, name, config.types, config.phone_regions)
        hits[name] = {t: rows for t, rows in by_type.items() if rows}
    return hits


def tally(found: Found, hits: dict, columns: dict[str, pa.Array], row_numbers: pa.Array | int) -> None:
    """Adds one batch's hits to ``found``: cell counts, and the ``_EXAMPLES`` lowest-numbered examples so far
    (in whatever order batches come); ``row_numbers``: the batch's first row number, or every row's."""
    for name, by_type in hits.items():
        for pii_type, hit_rows in by_type.items():
            cells, kept = found.setdefault(name, {}).get(pii_type, (0, []))
            first = sorted(hit_rows)[:_EXAMPLES]
            numbers = [row_numbers + row for row in first] if isinstance(row_numbers, int) \
                else row_numbers.take(pa.array(first)).to_pylist()
            if len(kept) < _EXAMPLES or numbers[0] < kept[-1][0]:
                texts = columns[name].take(pa.array(first)).to_pylist()
                kept = sorted(kept + [(number, text[slice(*hit_rows[row][0])])
                                      for row, number, text in zip(first, numbers, texts, strict=True)])[:_EXAMPLES]
            found[name][pii_type] = (cells + len(hit_rows), kept)


def in_order(found: dict, columns: list[str], types: tuple[str, ...]) -> dict:
    """``found`` in column order, then the policy's type order: the same findings in the same order,
    whichever batch or partition saw a column first."""
    return {name: {t: found[name][t] for t in types if t in found[name]} for name in columns if name in found}


def scan_source(source: Source, config: PiiPolicy, strings: bool = False
                ) -> tuple[int, int, list[str], list[str], Found, Found]:
    """(rows, batches, scanned columns, skipped columns, found, found at low confidence) of the whole source."""
    elected = elect(source, config, strings)
    rows = batches = 0
    scanned: dict[str, None] = {}
    skipped: dict[str, None] = {}
    found: Found = {}
    low: Found = {}
    for batch in source.batches(None, strings):
        columns, unscanned = _columns(batch)
        hits = _scan_batch(columns, config, elected)
        tally(found, hits, columns, rows)
        tally(low, scan_low(columns, config.types, hits, config.phone_regions), columns, rows)
        scanned |= dict.fromkeys(columns)
        skipped |= dict.fromkeys(unscanned)
        rows += batch.num_rows
        batches += 1
    return (rows, batches, list(scanned), list(skipped), in_order(found, list(scanned), config.types),
            in_order(low, list(scanned), config.types))


def refuse_mask(source: Source, config: PiiPolicy) -> None:
    if config.action == "mask":
        raise GateInputError(f"{source.label}: action 'mask' writes a sanitized copy of files; on a streamed "
                             "dataset or a table use 'block' or 'report' (or scan the files without streaming)")


def check_pii_source(source: Source, config: PiiPolicy, policy_digest: str, algorithm: str = "sha256"
                     ) -> GateResult:
    """``data.pii`` over ``source`` in batches. ``action: mask`` rewrites files, so it needs ``check_pii``."""
    started, clock = utcnow(), time.perf_counter()
    refuse_mask(source, config)
    strings = source.kind != "table"  # CSV keeps leading zeros; Parquet and tables keep their own types
    with source.pinned() as pinned:  # the passes and the digest see one snapshot of a table
        rows, batches, scanned, skipped, found, low = scan_source(pinned, config, strings)
        manifest = table_manifest(pinned, algorithm) if pinned.kind == "table" else build_manifest(pinned.uri,
                                                                                                    algorithm)
    salt = secrets.token_bytes(16)
    return pii_result(source, config, policy_digest, manifest.digest, shown(found, salt),
                      shown(low, salt, low=True),
                      {"rows": rows, "batches": batches, "columns_scanned": scanned, "columns_skipped": skipped},
                      ToolInfo("mlgate-pii", f"pyarrow {pa.__version__}"), started, clock)


def pii_result(source: Source, config: PiiPolicy, policy_digest: str, digest: str, found: Shown, low: Shown,
               scan: dict, tool: ToolInfo, started: str, clock: float) -> GateResult:
    """The ``data.pii`` result of a source scanned by any engine; ``digest``: of exactly what was scanned;
    ``scan``: rows, batches, columns; ``low``: what was found at low confidence (ADR 0052)."""
    if scan["rows"] == 0:
        raise GateInputError(f"{source.label}: holds no rows; an empty dataset proves nothing")
    findings = [*shown_findings(found, config), *shown_findings(low, config, low=True)]
    violations = [f for f in findings if f.severity is not Severity.INFO]
    subject = Subject("dataset", source.label, digest)
    size = None if source.kind == "table" else sum(f.stat().st_size for f in dataset_files(source.path))
    cells = {t: {name: found[name][t][0] for name in found if t in found[name]} for t in config.types}
    low_cells = {t: {name: low[name][t][0] for name in low if t in low[name]}
                 for t in config.types if any(t in by_type for by_type in low.values())}
    return GateResult(
        gate=GATE,
        status=Status.BLOCKED if violations and config.action == "block" else Status.PASSED,
        subject=subject,
        policy_digest=policy_digest,
        tool=tool,
        started_at=started,
        finished_at=utcnow(),
        metrics={**scan, "bytes": size, "cells_by_type": cells,
                 "low_confidence_cells_by_type": low_cells, "violations": len(violations),
                 "seconds": round(time.perf_counter() - clock, 4)},
        thresholds={"action": config.action, "types": list(config.types), "batch_rows": source.batch_rows,
                    "allowed": {column: list(types) for column, types in config.allowed.items()},
                    "phone_regions": list(config.phone_regions), "low_confidence": config.low_confidence,
                    "ner": model_info(config.ner) if config.ner else None},
        findings=tuple(findings),
    )
