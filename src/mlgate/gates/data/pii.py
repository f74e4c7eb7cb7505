"""``data.pii``: find PII and secrets in tabular or text data, and block, mask or report them.

Every column is scanned as whole Arrow arrays (see ``pii_detectors``); the policy says which columns
may hold which types. Evidence names the type, column, row indexes and a salted hash prefix of an
example — never the value: the salt is random per scan, so prefixes cannot be matched across scans
or looked up in a table of known values.
"""

from __future__ import annotations

import codecs
import hashlib
import hmac
import io
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from mlgate.core.errors import GateInputError
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow
from mlgate.gates.data.integrity import build_manifest
from mlgate.gates.data.national_documents import document_scheme
from mlgate.gates.data.pii_detectors import Detector, Span, detectors, find_spans
from mlgate.gates.data.pii_ner import add_entities, model_info
from mlgate.gates.data.pii_views import add_views
from mlgate.gates.data.policies import NerPolicy, PiiPolicy
from mlgate.gates.data.validators import national_id_scheme

GATE = "data.pii"
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".txt": "text", ".text": "text", ".log": "text"}
# When spans of two types overlap, the more specific type keeps it (a phone-like run inside an IBAN).
_PRECEDENCE = ("secret", "iban", "credit_card", "us_ssn", "national_id", "email", "ip_address", "phone",
               "date_of_birth", "postal_address", "person_name")
_SEVERITY = {"secret": Severity.CRITICAL, "credit_card": Severity.HIGH, "us_ssn": Severity.HIGH,
             "iban": Severity.HIGH, "national_id": Severity.HIGH, "email": Severity.MEDIUM, "phone": Severity.MEDIUM,
             "ip_address": Severity.LOW, "person_name": Severity.MEDIUM, "postal_address": Severity.MEDIUM,
             "date_of_birth": Severity.HIGH}
_EXAMPLES = 3

Hits = dict[str, dict[str, dict[int, list[Span]]]]  # column -> type -> row -> spans
Found = dict[str, dict[str, tuple[int, list[tuple[int, str]]]]]  # column -> type -> (cells, [(row, match)])


def data_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise GateInputError(f"{path}: unsupported file type {path.suffix!r}; "
                             f"expected one of {sorted(FORMATS)}") from None


def data_files(path: Path) -> list[Path]:
    """``path`` itself, or every data file under a directory (a partitioned dataset: ``year=2024/part-0.parquet``),
    in name order. Hidden and ``_``-prefixed files (``_SUCCESS``, ``.crc``) are markers, not data; any other file
    the scan cannot read fails closed rather than being skipped."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise GateInputError(f"{path}: no such file or directory to scan")
    files = sorted(p for p in path.rglob("*") if p.is_file()
                   and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts))
    unreadable = [str(p.relative_to(path)) for p in files if p.suffix.lower() not in FORMATS]
    if unreadable:
        raise GateInputError(f"{path}: holds files the scan cannot read: {unreadable[:5]}; expected one of "
                             f"{sorted(FORMATS)}")
    if not files:
        raise GateInputError(f"{path}: the directory holds no data files; an empty dataset proves nothing")
    return files


def check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise GateInputError(f"unknown text encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)") from None


def read_table(path: Path, encoding: str = "utf-8") -> pa.Table:
    """The file as an Arrow table; CSV is read all-string so digits keep their leading zeros and spacing.
    Text formats are decoded with ``encoding``.

    Reader errors are re-raised without their message: Arrow quotes the offending row, which may be PII.
    """
    import pyarrow.csv as pa_csv
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    fmt = data_format(path)
    if fmt != "parquet" and path.is_file() and path.stat().st_size == 0:
        raise GateInputError(f"{path}: the file is empty (0 bytes); an empty dataset proves nothing")
    try:
        if fmt == "csv":
            options = pa_csv.ReadOptions(encoding=encoding)
            with pa_csv.open_csv(path, read_options=options) as reader:
                names = reader.schema.names
            table = pa_csv.read_csv(path, read_options=options, convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string())))
        elif fmt == "parquet":
            table = pq.read_table(path)
        elif fmt == "jsonl":
            utf8 = path if codecs.lookup(encoding).name == "utf-8" else io.BytesIO(
                path.read_text(encoding=encoding).encode())
            table = pa_json.read_json(utf8)
        else:
            lines = path.read_text(encoding=encoding).removesuffix("\n").split("\n")
            table = pa.table({"text": pa.array(lines, pa.large_string())})
    except OSError as exc:
        raise GateInputError(f"{path}: cannot read: {exc.strerror or type(exc).__name__}") from None
    except (pa.ArrowException, UnicodeError, ValueError) as exc:
        if isinstance(exc, UnicodeError) or "UTF8" in str(exc):
            where = f" at byte {exc.start}" if isinstance(exc, UnicodeDecodeError) else ""
            raise GateInputError(f"{path}: not valid {encoding} text{where}; pass the file's encoding (--encoding, "
                                 "e.g. latin-1 or cp1252)") from None
        raise GateInputError(f"{path}: not valid {fmt} ({type(exc).__name__}; details withheld, "
                             "they may quote the data)") from None
    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()  # nested JSON objects become dotted columns: "address.street"
    return table


def string_columns(table: pa.Table) -> tuple[dict[str, pa.Array], list[str]]:
    """Columns that can hold text, as string arrays, and the names of those that cannot (numbers, dates).

    Integers are scanned too (a card or SSN stored as a number). Nested lists fail closed.
    """
    scanned, skipped = {}, []
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind) \
                or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            try:
                scanned[name] = pc.cast(column.combine_chunks(), pa.large_string())
            except pa.ArrowInvalid:
                raise GateInputError(f"column {name!r} holds bytes that are not UTF-8 text") from None
        elif pa.types.is_nested(kind):
            raise GateInputError(f"column {name!r} has nested type {kind}, which the PII scan cannot read; "
                                 "flatten it first")
        else:
            skipped.append(name)
    return scanned, skipped


def _drop_overlaps(by_type: dict[str, dict[int, list[Span]]]) -> None:
    """In rows where several types matched, a span overlapping one of a more specific type is dropped."""
    order = sorted(by_type, key=_PRECEDENCE.index)
    for i, low in enumerate(order):
        for high in order[:i]:
            for row in by_type[low].keys() & by_type[high].keys():
                taken = by_type[high][row]
                kept = [s for s in by_type[low][row] if not any(s[0] < t[1] and t[0] < s[1] for t in taken)]
                if kept:
                    by_type[low][row] = kept
                else:
                    del by_type[low][row]


def scan(columns: dict[str, pa.Array], types: tuple[str, ...], phone_regions: tuple[str, ...] = (),
         ner: NerPolicy | None = None) -> Hits:
    hits: Hits = {}
    for name, values in columns.items():
        by_type = {t: find_spans(values, detectors(phone_regions)[t], name) for t in types}
        add_entities(by_type, values, ner, types)
        _drop_overlaps(by_type)
        add_views(by_type, values, name, types, phone_regions)
        hits[name] = {t: rows for t, rows in by_type.items() if rows}
    return hits


def scan_low(columns: dict[str, pa.Array], types: tuple[str, ...], hits: Hits,
             phone_regions: tuple[str, ...] = ()) -> Hits:
    """Low-confidence spans (ADR 0052): a type's own format whose check fails, where no finding of ``hits``
    (any type) already covers it."""
    low: Hits = {}
    for name, values in columns.items():
        for pii_type in types:
            weak = detectors(phone_regions)[pii_type].weak
            if not weak:
                continue
            taken = hits.get(name, {}).values()
            for row, spans in find_spans(values, Detector(pii_type, weak), name).items():
                strong = [t for rows in taken for t in rows.get(row, ())]
                kept = [s for s in spans if not any(s[0] < t[1] and t[0] < s[1] for t in strong)]
                if kept:
                    low.setdefault(name, {}).setdefault(pii_type, {})[row] = kept
    return low


def _salted_prefix(salt: bytes, value: str) -> str:
    return hashlib.sha256(salt + value.encode()).hexdigest()[:8]


def examples(hits: Hits, columns: dict[str, pa.Array]) -> Found:
    """What the findings are written from: per column and type, the count of cells and the first rows'
    matched text (never kept beyond the scan)."""
    found: Found = {}
    for name, by_type in hits.items():
        for pii_type, rows in by_type.items():
            first = sorted(rows)[:_EXAMPLES]
            values = columns[name].take(pa.array(first)).to_pylist()
            found.setdefault(name, {})[pii_type] = (len(rows), [(row, text[slice(*rows[row][0])])
                                                                for row, text in zip(first, values, strict=True)])
    return found


Shown = dict[str, dict[str, tuple[int, list[tuple[int, str, str]]]]]  # column -> type -> (cells, [(row, #, scheme)])


def shown(found: Found, salt: bytes, low: bool = False) -> Shown:
    """``found`` as the findings show it: each example's row, a salted digest prefix and, for a national ID
    (not of low confidence), its scheme; what a Spark partition returns instead of the matched text."""
    return {name: {pii_type: (cells, [(row, _salted_prefix(salt, text),
                                       national_id_scheme(text.strip()) or document_scheme(text) or "?"
                                       if pii_type == "national_id" and not low else "")
                                      for row, text in rows])
                   for pii_type, (cells, rows) in by_type.items()}
            for name, by_type in found.items()}


def _findings(found: Found, config: PiiPolicy, label: str = "", low: bool = False) -> Iterator[Finding]:
    yield from shown_findings(shown(found, secrets.token_bytes(16), low), config, label, low)


def shown_findings(found: Shown, config: PiiPolicy, label: str = "", low: bool = False) -> Iterator[Finding]:
    """``low``: findings of low confidence (ADR 0052), INFO unless the policy's ``low_confidence`` is block."""
    for name, by_type in found.items():
        for pii_type, (cells, shown_rows) in by_type.items():
            examples = ", ".join(f"{row} (#{prefix})" for row, prefix, _ in shown_rows)
            allowed = config.allows(name, pii_type) or (low and config.low_confidence == "report")
            schemes = ""
            if pii_type == "national_id" and not low:  # which scheme, never which value
                schemes = " (" + ", ".join(sorted({scheme for _, _, scheme in shown_rows})) + ")"
            what = f"text in {pii_type}'s format whose check fails (low confidence)" if low else pii_type
            yield Finding(
                id=f"{GATE}.{pii_type}" + (".low" if low else ""),
                severity=Severity.INFO if allowed else _SEVERITY[pii_type],
                message=f"{cells} cell(s) hold {what}{schemes}"
                        + (" (allowed by policy)" if config.allows(name, pii_type) else
                           " (reported, not blocking: low_confidence is report)" if allowed else
                           f", which column {name!r} may not hold")
                        + f"; e.g. rows {examples}",
                location=label + name,
            )


def _masker(config: PiiPolicy):
    if config.mask_with == "redact":
        return lambda pii_type, value: f"<{pii_type}>"
    key = os.environ.get(config.hash_key_env, "").encode()
    if not key:
        raise GateInputError(f"mask_with 'hmac' needs a secret key in the environment variable "
                             f"{config.hash_key_env}; set it, or choose mask_with 'redact'")
    return lambda pii_type, value: (
        f"<{pii_type}:{hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]}>")


def mask_table(table: pa.Table, columns: dict[str, pa.Array], hits: Hits, config: PiiPolicy,
               low: Hits | None = None) -> pa.Table:
    """``table`` with every span the policy does not allow replaced by a token (same value → same token);
    ``low`` spans too when the policy's ``low_confidence`` is block (they never overlap ``hits``)."""
    token = _masker(config)
    layers = [hits, low] if low and config.low_confidence == "block" else [hits]
    for name in {name: None for layer in layers for name in layer}:
        edits: dict[int, list[tuple[Span, str]]] = {}
        for layer in layers:
            for pii_type, rows in layer.get(name, {}).items():
                if not config.allows(name, pii_type):
                    for row, spans in rows.items():
                        edits.setdefault(row, []).extend((span, pii_type) for span in spans)
        if not edits:
            continue
        values = columns[name].to_pylist()
        for row, spans in edits.items():
            text, kept = values[row], []
            for span, pii_type in sorted(spans, key=lambda edit: (edit[0][0], -edit[0][1])):
                if not kept or span[0] >= kept[-1][0][1]:  # a whole-cell span (a view's, ADR 0056) takes all
                    kept.append((span, pii_type))
            for (start, end), pii_type in reversed(kept):
                text = text[:start] + token(pii_type, text[start:end]) + text[end:]
            values[row] = text
        table = table.set_column(table.column_names.index(name), pa.field(name, pa.large_string()),
                                 pa.array(values, pa.large_string()))
    return table


def write_table(table: pa.Table, path: Path, fmt: str) -> None:
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    if fmt == "csv":
        pa_csv.write_csv(table, path)
    elif fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for row in table.to_pylist():
                handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    else:
        path.write_text("\n".join(table.column("text").to_pylist()) + "\n", encoding="utf-8")


def check_pii(path: Path, config: PiiPolicy, policy_digest: str, out_dir: Path | None = None,
              algorithm: str = "sha256", encoding: str = "utf-8") -> GateResult:
    """Scan ``path`` (CSV, Parquet, JSONL or plain text, or a directory of them) and apply ``config.action``
    to what it finds. In a directory, findings are located as ``file:column``. No rows at all is an error."""
    started, clock = utcnow(), time.perf_counter()
    path = Path(path)
    files = data_files(path)
    if config.action == "mask" and out_dir is None:
        raise GateInputError("action 'mask' needs an output directory for the sanitized copy")
    check_encoding(encoding)
    masked_root = None
    if config.action == "mask":
        masked_root = out_dir / (f"{path.stem}.masked{path.suffix}" if path.is_file() else f"{path.name}.masked")
    findings: list[Finding] = []
    rows, scanned, skipped = 0, {}, {}
    cells: dict[str, dict[str, int]] = {t: {} for t in config.types}
    low_cells: dict[str, dict[str, int]] = {}
    for file in files:
        label = "" if file == path else f"{file.relative_to(path)}:"
        table = read_table(file, encoding)
        try:
            columns, unscanned = string_columns(table)
        except GateInputError as exc:
            raise GateInputError(f"{file}: {exc}") from None
        hits = scan(columns, config.types, config.phone_regions, config.ner)
        low = scan_low(columns, config.types, hits, config.phone_regions)
        findings += _findings(examples(hits, columns), config, label)
        findings += _findings(examples(low, columns), config, label, low=True)
        rows += table.num_rows
        scanned |= dict.fromkeys(columns)
        skipped |= dict.fromkeys(unscanned)
        for name, by_type in hits.items():
            for pii_type, hit_rows in by_type.items():
                cells[pii_type][label + name] = len(hit_rows)
        for name, by_type in low.items():
            for pii_type, hit_rows in by_type.items():
                low_cells.setdefault(pii_type, {})[label + name] = len(hit_rows)
        if masked_root is not None:
            target = masked_root if file == path else masked_root / file.relative_to(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            write_table(mask_table(table, columns, hits, config, low), target, data_format(file))
    if rows == 0:
        raise GateInputError(f"{path}: holds no rows (a header alone?); an empty dataset proves nothing")
    violations = [f for f in findings if f.severity is not Severity.INFO]
    metrics = {
        "rows": rows, "files": len(files), "bytes": sum(f.stat().st_size for f in files),
        "columns_scanned": list(scanned), "columns_skipped": list(skipped),
        "cells_by_type": cells, "low_confidence_cells_by_type": low_cells, "violations": len(violations),
    }
    if masked_root is not None:
        metrics["masked_digest"] = build_manifest(masked_root, algorithm).digest
    metrics["seconds"] = round(time.perf_counter() - clock, 4)
    return GateResult(
        gate=GATE,
        status=Status.BLOCKED if violations and config.action == "block" else Status.PASSED,
        subject=Subject("dataset", str(path), build_manifest(path, algorithm).digest),
        policy_digest=policy_digest,
        tool=ToolInfo("mlgate-pii", f"pyarrow {pa.__version__}"),
        started_at=started,
        finished_at=utcnow(),
        metrics=metrics,
        thresholds={"action": config.action, "types": list(config.types), "encoding": encoding,
                    "allowed": {column: list(types) for column, types in config.allowed.items()},
                    "phone_regions": list(config.phone_regions), "low_confidence": config.low_confidence,
                    "ner": model_info(config.ner) if config.ner else None},
        findings=tuple(findings),
        artifacts=(str(masked_root),) if masked_root is not None else (),
    )
