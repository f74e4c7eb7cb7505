"""Benchmark ``data.pii`` against Presidio's ``AnalyzerEngine`` (regex recognizers, no-op NLP engine).

A labeled corpus of free-text cells is generated with Faker in several locales: PII of every type
inside sentences, mixed with decoys (16-digit numbers failing Luhn, SSN shapes in invalid ranges,
dates, zip codes, UUIDs, SKUs, amounts, version strings). Both tools scan the same cells; a cell counts
as a hit for a type when at least one span of that type was reported in it. Presidio is slow, so it
scans a subset (``--presidio-cells``); quality is compared on that subset, throughput is MB/s of
each tool's own run (mlgate: best of three end-to-end ``check_pii`` runs on the whole corpus file —
read, scan, validate, findings; Presidio: one ``analyze`` call per cell over its subset, after a warm-up).

Presidio lives in its own venv (its spaCy pins clash with ours): give its python with
``--reference-python`` or ``MLGATE_BENCH_PYTHON`` (default ``.venv-bench/bin/python``). It runs this
same file as a worker (``--presidio-worker``), which needs only presidio-analyzer there.

    .venv/bin/python benchmarks/pii.py [--quick]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import string
import subprocess
import tempfile
import time
from pathlib import Path

LOCALES = ("en_US", "de_DE", "fr_FR", "en_GB")
COMPARED = ("email", "phone", "us_ssn", "credit_card", "iban", "ip_address")
PRESIDIO_ENTITIES = {"EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone", "US_SSN": "us_ssn",
                     "CREDIT_CARD": "credit_card", "IBAN_CODE": "iban", "IP_ADDRESS": "ip_address"}
# Every Presidio entity that maps to an mlgate type, for the peer test cases (Presidio runs all its
# recognizers there); the throughput run keeps the six above, as before.
PRESIDIO_ALL = {**PRESIDIO_ENTITIES, "UK_NINO": "national_id", "UK_NHS": "national_id", "IN_PAN": "national_id",
                "IN_AADHAAR": "national_id", "ES_NIF": "national_id", "ES_NIE": "national_id",
                "IT_FISCAL_CODE": "national_id", "FI_PERSONAL_IDENTITY_CODE": "national_id",
                "PL_PESEL": "national_id", "DE_TAX_ID": "national_id", "SE_PERSONNUMMER": "national_id",
                **dict.fromkeys(("AU_TFN", "AU_MEDICARE", "CA_SIN", "KR_RRN", "KR_FRN", "TR_NATIONAL_ID", "US_ITIN",
                                 "ZA_ID_NUMBER", "TH_TNIN", "SG_NRIC_FIN", "NG_NIN", "US_MBI", "DE_SOCIAL_SECURITY",
                                 "DE_HEALTH_INSURANCE", "PH_TIN", "US_PASSPORT", "UK_PASSPORT", "DE_PASSPORT",
                                 "ES_PASSPORT", "IT_PASSPORT", "IN_PASSPORT", "KR_PASSPORT", "DE_ID_CARD",
                                 "IT_IDENTITY_CARD", "IN_VOTER", "US_DRIVER_LICENSE", "IT_DRIVER_LICENSE",
                                 "UK_DRIVING_LICENCE", "KR_DRIVER_LICENSE", "DE_FUEHRERSCHEIN"), "national_id"),
                "PERSON": "person_name",
                "LOCATION": "postal_address", "DATE_TIME": "date_of_birth"}
# Faker's jcb16 prefix "35" strays outside JCB's real 3528-3589 range, so JCB numbers are built here.
CARD_TYPES = ("visa16", "visa13", "visa19", "mastercard", "amex", "discover", "diners", "jcb")


# ---------------------------------------------------------------- corpus

def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _token(rng: random.Random, alphabet: str, size: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def _group(text: str, size: int = 4) -> str:
    return " ".join(text[i:i + size] for i in range(0, len(text), size))


def jcb(rng: random.Random) -> str:
    from mlgate.gates.data.pii_detectors import luhn_ok

    body = str(rng.randint(3528, 3589)) + _token(rng, string.digits, 11)
    return next(body + d for d in string.digits if luhn_ok(body + d))


def pii_value(kind: str, fake, us, rng: random.Random) -> str:
    if kind == "email":
        return fake.email()
    if kind == "phone":
        return fake.phone_number()
    if kind == "us_ssn":
        return us.ssn()
    if kind == "credit_card":
        card_type = rng.choice(CARD_TYPES)
        number = jcb(rng) if card_type == "jcb" else fake.credit_card_number(card_type)
        style = rng.random()
        return _group(number) if style < 0.3 else _group(number).replace(" ", "-") if style < 0.45 else number
    if kind == "iban":
        iban = fake.iban()
        return _group(iban) if rng.random() < 0.4 else iban
    if kind == "ip_address":
        return fake.ipv4() if rng.random() < 0.6 else fake.ipv6()
    choice = rng.randrange(6)  # secret
    if choice == 0:
        return "AKIA" + _token(rng, string.ascii_uppercase + string.digits, 16)
    if choice == 1:
        return "ghp_" + _token(rng, string.ascii_letters + string.digits, 36)
    if choice == 2:
        return "xoxb-" + _token(rng, string.digits, 12) + "-" + _token(rng, string.ascii_letters, 24)
    if choice == 3:
        return ".".join((_b64({"alg": "HS256", "typ": "JWT"}), _b64({"sub": fake.user_name()}),
                         _token(rng, string.ascii_letters + string.digits + "_-", 43)))
    if choice == 4:
        return "-----BEGIN RSA PRIVATE KEY-----"
    return f"api_key={_token(rng, string.ascii_letters + string.digits + '+/', 32)}"


def decoy_value(fake, rng: random.Random) -> str:
    from mlgate.gates.data.pii_detectors import luhn_ok

    choice = rng.randrange(9)
    if choice == 0:
        number = "4" + _token(rng, string.digits, 15)
        return number[:-1] + str((int(number[-1]) + 1) % 10) if luhn_ok(number) else number
    if choice == 1:
        # area 9XX is no SSN's, and no ITIN's outside the IRS's groups (50-65, 70-88, 90-92, 94-99)
        area = rng.choice(["000", "666", str(rng.randint(900, 999))])
        group = rng.choice([g for g in range(1, 100) if area < "900" or not (50 <= g <= 65 or 70 <= g <= 88
                                                                            or 90 <= g <= 92 or g >= 94)])
        return f"{area}-{group:02d}-{rng.randint(1, 9999):04d}"
    if choice == 2:
        return fake.date(pattern=rng.choice(["%Y-%m-%d", "%d/%m/%Y", "%m-%d-%Y", "%d.%m.%Y"]))
    if choice == 3:
        return fake.postcode()
    if choice == 4:
        return str(fake.uuid4())
    if choice == 5:
        return f"SKU-{rng.randint(10000, 99999)}-{_token(rng, string.ascii_uppercase, 2)}"
    if choice == 6:
        return rng.choice([f"${rng.uniform(1, 99999):,.2f}", f"{rng.uniform(1, 9999):.2f} EUR"])
    if choice == 7:
        return rng.choice([f"v{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
                           f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}"])
    return str(rng.randint(10**11, 10**12))  # an order number


def corpus(cells: int, seed: int = 7) -> tuple[list[str], list[set[str]]]:
    """Free-text cells and, for each, the set of PII types it holds."""
    from faker import Faker

    rng = random.Random(seed)
    Faker.seed(seed)
    fakes = [Faker(locale) for locale in LOCALES]
    us = fakes[0]
    texts, labels = [], []
    for _ in range(cells):
        fake = rng.choice(fakes)
        parts, kinds = [fake.sentence(nb_words=rng.randint(4, 12))], set()
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
            if rng.random() < 0.6:
                kind = rng.choice(COMPARED + ("secret",))
                parts.append(f"{rng.choice(('see', 'ref', 'value', 'contact', 'note:'))} "
                             f"{pii_value(kind, fake, us, rng)}")
                kinds.add(kind)
            else:
                parts.append(f"{rng.choice(('id', 'on', 'total', 'code', 'zip'))} {decoy_value(fake, rng)}")
            parts.append(fake.sentence(nb_words=rng.randint(3, 8)))
        texts.append(" ".join(parts))
        labels.append(kinds)
    return texts, labels


# ---------------------------------------------------------------- tools

def presidio_worker(cells_path: str, out_path: str, spacy_model: str | None = None) -> None:
    """Runs in the reference venv: analyse every cell, write detected types per cell and the time taken.

    ``cells`` is a list (the throughput corpus: six entities) or {"all": [...]}: every recognizer Presidio
    loads for English, mapped through ``PRESIDIO_ALL``."""
    os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""  # offline: use tldextract's bundled snapshot
    import warnings

    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    warnings.filterwarnings("ignore")
    engine_name = "spacy" if spacy_model else "no_op"
    nlp = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": engine_name,
        "models": [{"lang_code": "en", "model_name": spacy_model or "no_op"}]}).create_engine()
    engine = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
    cells = json.loads(Path(cells_path).read_text())
    mapping, entities = PRESIDIO_ENTITIES, list(PRESIDIO_ENTITIES)
    regions: list[list[str]] = [[]] * len(cells)
    if isinstance(cells, dict):
        regions = cells.get("phone_regions") or [[]] * len(cells["all"])
        cells, mapping, entities = cells["all"], PRESIDIO_ALL, None
    engines = {(): engine}
    for wanted in {tuple(r) for r in regions if r}:  # a test's own PhoneRecognizer(supported_regions=...)
        from presidio_analyzer.predefined_recognizers import PhoneRecognizer

        engines[wanted] = AnalyzerEngine(nlp_engine=nlp, supported_languages=["en"])
        engines[wanted].registry.remove_recognizer("PhoneRecognizer")
        engines[wanted].registry.add_recognizer(PhoneRecognizer(supported_regions=list(wanted)))
    engine.analyze(cells[0], language="en", entities=entities)  # warm up
    clock, cpu = time.perf_counter(), time.process_time()
    found = [sorted({mapping[r.entity_type] for r in engines[tuple(wanted)].analyze(text, language="en",
                                                                                  entities=entities)
                     if r.entity_type in mapping})
             for text, wanted in zip(cells, regions, strict=True)]
    seconds, cpu = time.perf_counter() - clock, time.process_time() - cpu
    from importlib.metadata import version
    Path(out_path).write_text(json.dumps({"found": found, "seconds": seconds, "cpu_seconds": cpu,
                                          "version": version("presidio-analyzer")}))


def run_presidio(python: str, cells: list[str] | dict, spacy_model: str | None = None) -> dict | str:
    """Presidio's detections, or the reason it was skipped."""
    if not Path(python).exists():
        return f"no reference python at {python} (set MLGATE_BENCH_PYTHON or --reference-python)"
    with tempfile.TemporaryDirectory() as tmp:
        cells_path, out_path = Path(tmp, "cells.json"), Path(tmp, "found.json")
        cells_path.write_text(json.dumps(cells))
        argv = [python, __file__, "--presidio-worker", str(cells_path), str(out_path)]
        proc = subprocess.run(argv + (["--spacy-model", spacy_model] if spacy_model else []),
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode:
            return f"presidio worker failed: {proc.stderr.strip().splitlines()[-1:]}"
        return json.loads(out_path.read_text())


def timed_check(path: Path, types: tuple[str, ...] | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of one end-to-end ``check_pii`` on ``path`` (``types``: else every type), every
    validator cache emptied first (the corpus's values are new to it, as Presidio's are)."""
    from mlgate.gates.data import validators
    from mlgate.gates.data.pii import PiiPolicy, check_pii

    for value in vars(validators).values():
        if hasattr(value, "cache_clear"):
            value.cache_clear()
    policy = PiiPolicy(action="report", **({"types": types} if types else {}))
    clock, cpu = time.perf_counter(), time.process_time()
    check_pii(path, policy, "sha256:bench")
    return time.perf_counter() - clock, time.process_time() - cpu


def run_mlgate(cells: list[str], workdir: Path) -> tuple[list[set[str]], Path]:
    """mlgate's detections per cell (every type, as the timed ``check_pii`` runs scan), and the corpus file."""
    from mlgate.gates.data.pii import PiiPolicy, check_pii, read_table, scan, string_columns
    from mlgate.gates.data.pii_detectors import PII_TYPES

    path = workdir / "corpus.txt"
    path.write_text("\n".join(cells) + "\n", encoding="utf-8")
    check_pii(path, PiiPolicy(action="report"), "sha256:bench")  # warm up (imports, regex compile)
    columns, _ = string_columns(read_table(path))
    hits = scan(columns, PII_TYPES)["text"]
    found = [set() for _ in cells]
    for pii_type, rows in hits.items():
        for row in rows:
            found[row].add(pii_type)
    return found, path


# ---------------------------------------------------------------- scoring

def scores(labels: list[set[str]], found: list[set[str]], pii_type: str) -> tuple[float, float, float]:
    tp = sum(pii_type in lab and pii_type in got for lab, got in zip(labels, found, strict=True))
    fp = sum(pii_type not in lab and pii_type in got for lab, got in zip(labels, found, strict=True))
    fn = sum(pii_type in lab and pii_type not in got for lab, got in zip(labels, found, strict=True))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small corpus")
    parser.add_argument("--cells", type=int, default=None, help="cells in the corpus mlgate scans")
    parser.add_argument("--presidio-cells", type=int, default=None, help="cells Presidio scans (a prefix)")
    parser.add_argument("--reference-python", default=os.environ.get("MLGATE_BENCH_PYTHON",
                                                                      ".venv-bench/bin/python"))
    parser.add_argument("--rounds", type=int, default=3, help="interleaved mlgate/Presidio timing rounds")
    parser.add_argument("--presidio-worker", nargs=2, metavar=("CELLS", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--spacy-model", default=None, help="Presidio's NLP engine: this spaCy model (else no_op)")
    parser.add_argument("--ner-model", default=None, help="mlgate's ner option in the free-text names table: a "
                        "spaCy package name or the path of a pipeline (e.g. the data folder of --spacy-model)")
    parser.add_argument("--presidio-repo", type=Path, help="snapshot of microsoft/presidio (its tests are read)")
    parser.add_argument("--gitleaks-repo", type=Path, help="snapshot of gitleaks/gitleaks")
    parser.add_argument("--detect-secrets-repo", type=Path, help="snapshot of Yelp/detect-secrets")
    args = parser.parse_args(argv)
    if args.presidio_worker:
        presidio_worker(*args.presidio_worker, spacy_model=args.spacy_model)
        return
    peer_suites(args)
    entity_scores(300 if args.quick else 1000, args.reference_python, args.spacy_model)
    free_text_name_scores(300 if args.quick else 1000, args.reference_python, args.spacy_model, args.ner_model)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cells = args.cells or (5_000 if args.quick else 100_000)
    presidio_cells = min(cells, args.presidio_cells or (300 if args.quick else 10_000))
    texts, labels = corpus(cells)
    with tempfile.TemporaryDirectory() as tmp:
        found, path = run_mlgate(texts, Path(tmp))
        size = path.stat().st_size
        # interleaved rounds, so both tools see the same load on a shared machine; the median round counts
        rounds, cpu_rounds = [], []
        same_types = []  # mlgate asked for the six types Presidio is asked for
        for _ in range(args.rounds):
            seconds, cpu = timed_check(path)
            reference = run_presidio(args.reference_python, texts[:presidio_cells])
            same_types.append(timed_check(path, COMPARED))
            if isinstance(reference, str):
                break
            rounds.append((seconds, reference))
            cpu_rounds.append((cpu, reference.get("cpu_seconds")))
    if rounds:
        ref_bytes = len("\n".join(texts[:presidio_cells]).encode())
        ratios = sorted((ref["seconds"] / ref_bytes) / (sec / size) for sec, ref in rounds)
        seconds, reference = sorted(rounds, key=lambda r: (r[1]["seconds"] / ref_bytes) / (r[0] / size))[
            len(rounds) // 2]

    subset = slice(0, presidio_cells)
    print(f"corpus: {cells} cells, {size / 1e6:.2f} MB, locales {', '.join(LOCALES)}; "
          f"quality on the first {presidio_cells} cells (both tools)")
    print(f"{'type':<12} {'mlgate P':>9} {'R':>6} {'F1':>6}   {'presidio P':>10} {'R':>6} {'F1':>6}")
    for pii_type in COMPARED + ("secret",):
        mine = scores(labels[subset], found[subset], pii_type)
        row = f"{pii_type:<12} {mine[0]:>9.3f} {mine[1]:>6.3f} {mine[2]:>6.3f}"
        if isinstance(reference, dict) and pii_type in COMPARED:
            theirs = scores(labels[subset], [set(f) for f in reference["found"]], pii_type)
            row += f"   {theirs[0]:>10.3f} {theirs[1]:>6.3f} {theirs[2]:>6.3f}"
        else:
            row += f"   {'-':>10} {'-':>6} {'-':>6}"
        print(row)
    mine_all = [scores(labels, found, t)[2] for t in COMPARED + ("secret",)]
    print("mlgate F1 on the whole corpus: " + ", ".join(
        f"{t} {f:.3f}" for t, f in zip(COMPARED + ("secret",), mine_all, strict=True)))
    absent = {t: sum(t in got for got in found) for t in sorted(set().union(*found) - set(COMPARED) - {"secret"})}
    print("mlgate cells flagged with a type the corpus holds none of (false alarms): "
          + (", ".join(f"{t} {n}" for t, n in absent.items()) or "none"))
    if isinstance(reference, str):
        print(f"mlgate:   {size / 1e6 / seconds:8.2f} MB/s (check_pii, cold caches); reference skipped: {reference}")
        return
    from mlgate.gates.data.pii_detectors import PII_TYPES

    mlgate_mbps = size / 1e6 / seconds
    print(f"mlgate:   {mlgate_mbps:8.2f} MB/s  (check_pii, all {len(PII_TYPES)} types, validator caches emptied, "
          f"{size / 1e6:.2f} MB in {seconds:.2f} s; median of {len(rounds)} interleaved rounds)")
    ref_mbps = ref_bytes / 1e6 / reference["seconds"]
    print(f"presidio: {ref_mbps:8.4f} MB/s  (AnalyzerEngine {reference['version']}, no_op NLP, "
          f"{ref_bytes / 1e6:.3f} MB in {reference['seconds']:.1f} s)")
    print(f"ratio:    {mlgate_mbps / ref_mbps:8.0f}x   (rounds: {', '.join(f'{r:.0f}x' for r in ratios)})")
    six = sorted(wall for wall, _ in same_types)[len(same_types) // 2]
    print(f"mlgate, the six types Presidio is asked for: {size / 1e6 / six:.2f} MB/s, "
          f"{size / six / ref_mbps / 1e6:.0f}x (median round)")
    if all(ref_cpu for _, ref_cpu in cpu_rounds):
        # CPU seconds of each tool's own process: what other processes on a shared machine do to the wall
        # clock (a load spike in one tool's turn) mostly stays out of them
        by_cpu = sorted((ref_cpu / ref_bytes) / (cpu / size) for cpu, ref_cpu in cpu_rounds)
        six_cpu = sorted((ref_cpu / ref_bytes) / (cpu / size)
                         for (_, cpu), (_, ref_cpu) in zip(same_types, cpu_rounds, strict=False))
        print(f"ratio by CPU time: {by_cpu[len(by_cpu) // 2]:.0f}x all types (rounds: "
              f"{', '.join(f'{r:.0f}x' for r in by_cpu)}); the six types: {six_cpu[len(six_cpu) // 2]:.0f}x "
              f"(rounds: {', '.join(f'{r:.0f}x' for r in six_cpu)})")


# ---------------------------------------------------------------- names, addresses, dates of birth

ENTITY_TYPES = ("person_name", "postal_address", "date_of_birth")


def entity_table(rows: int, seed: int = 13) -> tuple[dict[str, list[str]], dict[str, list[set[str]]]]:
    """A customer table in four locales: what a training set holds. Columns named as people name them
    (and decoys: product names, order dates, a free-text note that mentions a birth date or an address
    half of the time); labels per cell."""
    from faker import Faker

    rng = random.Random(seed)
    Faker.seed(seed)
    fakes = [Faker(locale) for locale in LOCALES]
    columns: dict[str, list[str]] = {c: [] for c in ("customer_name", "street_address", "birth_date",
                                                     "product_name", "order_date", "note")}
    labels: dict[str, list[set[str]]] = {c: [] for c in columns}
    for _ in range(rows):
        fake = rng.choice(fakes)
        born = fake.date_of_birth(minimum_age=18, maximum_age=90)
        address = fake.address().replace("\n", ", ")
        cells = {"customer_name": (fake.name(), {"person_name"}),
                 "street_address": (address, {"postal_address"}),
                 "birth_date": (born.strftime(rng.choice(["%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y"])), {"date_of_birth"}),
                 "product_name": (f"{fake.word().title()} {fake.word()} {rng.randint(2, 99)}", set()),
                 "order_date": (fake.date_this_decade().isoformat(), set())}
        choice = rng.randrange(3)
        if choice == 0:
            cells["note"] = (f"{fake.sentence()} Born on {born.strftime('%d/%m/%Y')}.", {"date_of_birth"})
        elif choice == 1:
            cells["note"] = (f"{fake.sentence()} Ship to {address}.", {"postal_address"})
        else:
            cells["note"] = (f"{fake.sentence()} Ordered on {fake.date_this_decade().isoformat()}.", set())
        for column, (value, kinds) in cells.items():
            columns[column].append(value)
            labels[column].append(kinds)
    return columns, labels


def entity_scores(rows: int, reference_python: str, spacy_model: str | None = None) -> None:
    import pyarrow as pa

    from mlgate.gates.data.pii import scan

    columns, labels = entity_table(rows)
    hits = scan({c: pa.array(v, pa.large_string()) for c, v in columns.items()}, ENTITY_TYPES)
    found = {c: [{t for t, r in hits[c].items() if i in r} for i in range(rows)] for c in columns}
    cells = [v for c in columns for v in columns[c]]
    reference = run_presidio(reference_python, {"all": cells}, spacy_model)
    flat_labels = [lab for c in columns for lab in labels[c]]
    mine = [f for c in columns for f in found[c]]
    print(f"\nnames, addresses, dates of birth: a {rows}-row customer table, {len(columns)} columns, "
          f"locales {', '.join(LOCALES)}; Presidio per cell (PERSON, LOCATION, DATE_TIME; NLP engine: "
          f"{spacy_model or 'no_op, so no PERSON or LOCATION'})"
          + ("" if isinstance(reference, dict) else f"; Presidio skipped: {reference}"))
    print(f"{'type':<15} {'mlgate P':>9} {'R':>6} {'F1':>6}   {'presidio P':>10} {'R':>6} {'F1':>6}")
    for pii_type in ENTITY_TYPES:
        p, r, f = scores(flat_labels, mine, pii_type)
        row = f"{pii_type:<15} {p:>9.3f} {r:>6.3f} {f:>6.3f}"
        if isinstance(reference, dict):
            tp, tr, tf = scores(flat_labels, [set(x) for x in reference["found"]], pii_type)
            row += f"   {tp:>10.3f} {tr:>6.3f} {tf:>6.3f}"
        print(row)


_NAME_SENTENCES = ("{s} Please call {n} back.", "{n} asked about the refund. {s}", "Forwarded to {n} on Monday.",
                   "{s} Signed, {n}", "Customer {n} wrote: {s}", "Meeting with {n} moved. {s}")
_DECOY_SENTENCES = ("{s} Shipped from {c}.", "{o} confirmed the order. {s}", "{s} Ask the {c} office.",
                    "Invoice sent to {o}. {s}", "{s}", "Delivery to {c} is late. {s}")


def free_text_names(rows: int, seed: int = 17) -> tuple[list[str], list[set[str]]]:
    """Notes in four locales: half name a person inside a sentence, half hold only capitalised decoys (a city,
    a company) — the case ADR 0018 leaves to a named-entity model."""
    from faker import Faker

    rng = random.Random(seed)
    Faker.seed(seed)
    fakes = [Faker(locale) for locale in LOCALES]
    texts, labels = [], []
    for i in range(rows):
        fake = rng.choice(fakes)
        if i % 2 == 0:
            texts.append(rng.choice(_NAME_SENTENCES).format(s=fake.sentence(), n=fake.name()))
            labels.append({"person_name"})
        else:
            texts.append(rng.choice(_DECOY_SENTENCES).format(s=fake.sentence(), c=fake.city(), o=fake.company()))
            labels.append(set())
    return texts, labels


def free_text_name_scores(rows: int, reference_python: str, spacy_model: str | None, ner_model: str | None) -> None:
    """person_name F1 on free text: mlgate without and with its NER option (``ner_model``: a spaCy package
    name or path), beside Presidio with its spaCy engine."""
    import pyarrow as pa

    from mlgate.gates.data.pii import scan
    from mlgate.gates.data.policies import NerPolicy

    texts, labels = free_text_names(rows)
    column = {"note": pa.array(texts, pa.large_string())}
    print(f"\nnames in free text: {rows} notes, locales {', '.join(LOCALES)}, half name a person")
    print(f"{'tool':<52} {'P':>6} {'R':>6} {'F1':>6}")
    runs = [("mlgate, no ner (names only in name columns)", None)]
    if ner_model:
        from mlgate.gates.data.integrity import build_manifest
        from mlgate.gates.data.policies import is_path

        pin = build_manifest(ner_model).digest if is_path(ner_model) else None  # the benchmark pins what it loads
        runs.append((f"mlgate, ner: {Path(ner_model).name}", NerPolicy(spacy_model=ner_model, digest=pin)))
    for title, ner in runs:
        hits = scan(column, ("person_name",), (), ner).get("note", {}).get("person_name", {})
        p, r, f = scores(labels, [{"person_name"} if i in hits else set() for i in range(rows)], "person_name")
        print(f"{title:<52} {p:>6.3f} {r:>6.3f} {f:>6.3f}")
    reference = run_presidio(reference_python, {"all": texts}, spacy_model)
    if isinstance(reference, dict):
        p, r, f = scores(labels, [set(x) for x in reference["found"]], "person_name")
        print(f"{'presidio, ' + (spacy_model or 'no_op: no PERSON'):<52} {p:>6.3f} {r:>6.3f} {f:>6.3f}")
    else:
        print(f"presidio skipped: {reference}")


# ---------------------------------------------------------------- peers' own test cases

def mlgate_types(texts: list[str], alone: bool = True, settings: list[dict] | None = None) -> list[set[str]]:
    """Types mlgate finds in each text; a type found at low confidence only (ADR 0052) as ``<type>:low``.
    ``alone``: each text is a one-row column of its own, as Presidio analyses each text alone (a column of
    many peers' cases would give the column vote of ``ColumnEvidence`` a mix of every suite's values), scanned
    with its ``settings`` (``phone_regions``); else all texts are the rows of one column, default settings."""
    import pyarrow as pa

    from mlgate.gates.data.pii import scan, scan_low
    from mlgate.gates.data.pii_detectors import PII_TYPES

    def found_in(columns: dict, regions: tuple[str, ...] = ()) -> list[set[str]]:
        hits = scan(columns, PII_TYPES, regions)
        low = scan_low(columns, PII_TYPES, hits, regions)
        found = [set() for _ in range(len(columns["text"]))]
        for suffix, layer in (("", hits), (":low", low)):
            for pii_type, rows in layer.get("text", {}).items():
                for row in rows:
                    found[row].add(pii_type + suffix)
        return found

    if alone:
        settings = settings or [{}] * len(texts)
        return [found_in({"text": pa.array([text], pa.large_string())}, tuple(setting.get("phone_regions", ())))[0]
                for text, setting in zip(texts, settings, strict=True)]
    return found_in({"text": pa.array(texts, pa.large_string())})


# A positive fixture whose secret says EXAMPLE or is mostly a run of one character (``ghp_xxxx…``, ``xoxb-xxx…``):
# the issue counts these as placeholders that must not be flagged, so they are scored apart from the other
# positives. A run inside a longer random token (a Twitter bearer token's leading A's, an ID of ones beside a
# random tail) does not make the token a placeholder.
# ``example`` in a host or a path (``api.example.com``, ``examples/cli.py``) says nothing of the secret beside it.
_FIXTURE_RUN = re.compile(r"[^\s\"'`=:,<>]*?(([^\s\"'`=:,<>])\2{5,})[^\s\"'`=:,<>]*")
_FIXTURE_WORD = re.compile(r"[^\s\"'`=:,<>./]*(?:EXAMPLE|example)[^\s\"'`=:,<>./]*(?![./\w])")


def _fixture_placeholder(text: str) -> bool:
    return _FIXTURE_WORD.search(text) is not None or any(
        2 * len(run.group(1)) >= len(run.group()) for run in _FIXTURE_RUN.finditer(text))


def _suite_table(title: str, cases, found: list[set[str]], reference: list[set[str]] | None,
                 group, tiers: bool = False) -> None:
    """Per group: positives and mlgate's finds, negatives and its false alarms (beside Presidio's). ``tiers``:
    also the positives Presidio itself expects at low confidence only (``weak``), and mlgate's counts with its
    low-confidence findings included (ADR 0052); the strict columns count its default findings alone."""
    positives_anywhere = {c.text for c in cases if c.positive}
    rows: dict[str, list[int]] = {}  # key -> [pos, found, neg, FA, ref found, ref FA, weak, found+low, FA+low]
    for i, case in enumerate(cases):
        if not case.positive and case.text in positives_anywhere:
            continue  # a negative for one plugin that another test of the same suite calls a positive
        key = group(case)
        row = rows.setdefault(key, [0] * 9)
        hit = case.type in found[i]
        any_tier = hit or f"{case.type}:low" in found[i]
        ref = reference is not None and case.type in reference[i]
        if case.positive:
            row[0] += 1
            row[1] += hit
            row[4] += ref
            row[6] += case.weak
            row[7] += any_tier
        else:
            row[2] += 1
            row[3] += hit
            row[5] += ref
            row[8] += any_tier
    width = max(34, *map(len, rows))
    print(f"\n{title}")
    print(f"{'':<{width}} {'positives':>9} {'mlgate found':>14} {'negatives':>9} {'false alarms':>13}"
          + (f" {'presidio found':>15} {'false alarms':>13}" if reference is not None else "")
          + (f" {'of which weak':>13} {'found, any tier':>16} {'FA, any tier':>13}" if tiers else ""))

    def share(n: int, of: int, empty: int) -> str:
        return f"({n / of if of else empty:>5.1%})"

    for key, (pos, hit, neg, fa, rhit, rfa, weak, hit_any, fa_any) in sorted(rows.items()):
        line = f"{key:<{width}} {pos:>9} {hit:>6} {share(hit, pos, 1)} {neg:>9} {fa:>5} {share(fa, neg, 0)}"
        if reference is not None:
            line += f" {rhit:>7} {share(rhit, pos, 1)} {rfa:>5} {share(rfa, neg, 0)}"
        if tiers:
            line += f" {weak:>13} {hit_any:>8} {share(hit_any, pos, 1)} {fa_any:>5} {share(fa_any, neg, 0)}"
        print(line)


def peer_suites(args: argparse.Namespace) -> bool:
    """Score mlgate (and Presidio where it has the type) on each peer suite given; False if none was."""
    import pii_peers

    ran = False
    if args.presidio_repo:
        cases, skipped = pii_peers.presidio_cases(args.presidio_repo)
        reference = run_presidio(args.reference_python, {"all": [c.text for c in cases], "phone_regions": [
            list(dict(c.policy).get("phone_regions", ())) for c in cases]})
        theirs = [set(f) for f in reference["found"]] if isinstance(reference, dict) else None
        mine = mlgate_types([c.text for c in cases], settings=[dict(c.policy) for c in cases])
        _suite_table(f"Presidio's recognizer test cases ({len(cases)} rebuilt, {skipped} not rebuildable; mlgate "
                     "with each test's recognizer settings as policy: phone_regions from the phone tests' "
                     "fixtures ([TR]; Presidio's defaults + JP, CN); Presidio with its default recognizers, and "
                     "each phone test's PhoneRecognizer(supported_regions=…) as its fixture builds it)"
                     + ("" if theirs else f"; Presidio skipped: {reference}"),
                     cases, mine, theirs, lambda c: c.type, tiers=True)
        ids = [i for i, c in enumerate(cases) if c.type == "national_id"]
        _suite_table("national_id by Presidio recognizer test", [cases[i] for i in ids],
                     [mine[i] for i in ids], [theirs[i] for i in ids] if theirs else None,
                     lambda c: c.source.removeprefix("presidio:"), tiers=True)
        ran = True
    for repo, loader, name in ((args.detect_secrets_repo, "detect_secrets_cases", "detect-secrets plugin tests"),
                               (args.gitleaks_repo, "gitleaks_cases", "gitleaks rule tests (tps/fps)")):
        if not repo:
            continue
        cases, skipped = getattr(pii_peers, loader)(repo)

        def group(case) -> str:
            scope = "out of scope" if case.source.endswith("out-of-scope") else "in scope"
            placeholder = case.positive and _fixture_placeholder(case.text)
            built = ":generated" in case.source
            return f"{scope}{', generated' if built else ''}{', placeholder fixture' if placeholder else ''}"

        _suite_table(f"{name} ({len(cases)} rebuilt, {skipped} built by their code: not rebuilt); "
                     "Presidio has no secret recognizers", cases, mlgate_types([c.text for c in cases]), None,
                     group)
        ran = True
    return ran


if __name__ == "__main__":
    main()
