"""Rebuild peers' published test cases for ``data.pii`` from their repository snapshots, read as data.

Nothing of theirs is copied or imported: their test files are parsed (Python with ``ast``, Go string
literals by hand) and only literal cases — or cases built from literals with ``.format``, ``+``, ``%``,
f-strings, ``textwrap.dedent`` — are kept. A case whose text needs their code to build is counted as
skipped, never guessed.

- Presidio: ``presidio-analyzer/tests/test_*_recognizer.py`` parametrized ``text``/``iban`` and
  ``expected_len``: a positive when ``expected_len > 0``; *weak* when Presidio's own assertion expects a low
  score (every expected score at most ``WEAK_SCORE``, some below it: "the pattern matched, its check failed").
  The recognizer's configuration is read from the test file's ``recognizer`` fixture (``supported_regions``,
  including ``PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS`` read from Presidio's source) and becomes mlgate's
  equivalent policy setting (``phone_regions``) for the tests that use that fixture.
- detect-secrets: ``tests/plugins/*_test.py`` parametrized lines with a ``should_flag``-like bool or an
  expected secret (``None``: negative), and keyword_test's ``*_TEST_CASES`` tables.
- gitleaks: ``cmd/generate/config/rules/*.go`` ``tps`` (positives) and ``fps`` (negatives) built from
  string literals only (most tps are generated from the rule's regex at test time: skipped).
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Case:
    source: str     # file (and rule) it came from
    type: str       # mlgate type it tests
    text: str
    positive: bool
    weak: bool = False  # Presidio expects this positive at low confidence only
    policy: tuple[tuple[str, tuple[str, ...]], ...] = ()  # mlgate policy settings equal to the test's recognizer


class Unevaluable(Exception):
    pass


_CALLS = {"dedent": textwrap.dedent, "str": str}


def evaluate(node: ast.AST, env: dict):  # noqa: C901 - one branch per node kind, kept flat
    """Literal value of ``node``, allowing names bound in ``env`` and string building; else Unevaluable."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        return [evaluate(e, env) for e in node.elts]
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        raise Unevaluable(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
            f"{node.value.id}.{node.attr}" in env:
        return env[f"{node.value.id}.{node.attr}"]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult, ast.Mod)):
        left, right = evaluate(node.left, env), evaluate(node.right, env)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Mult):
            return left * right
        return left % (tuple(right) if isinstance(right, list) else right)
    if isinstance(node, ast.JoinedStr):
        return "".join(str(evaluate(v.value, env)) if isinstance(v, ast.FormattedValue) else v.value
                       for v in node.values)
    if isinstance(node, ast.Subscript):
        return evaluate(node.value, env)[evaluate(node.slice, env)]
    if isinstance(node, ast.Slice):
        return slice(*(evaluate(p, env) if p is not None else None for p in (node.lower, node.upper, node.step)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -evaluate(node.operand, env)
    if isinstance(node, ast.Call):
        args = [evaluate(a, env) for a in node.args]
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("format", "join", "strip", "lower", "upper",
                                                              "replace"):
            return getattr(evaluate(func.value, env), func.attr)(*args)
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in _CALLS:
            return _CALLS[name](*args)
    raise Unevaluable(type(node).__name__)


def _bindings(body: list[ast.stmt], env: dict) -> dict:
    for stmt in body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                env[stmt.targets[0].id] = evaluate(stmt.value, env)
            except (Unevaluable, TypeError, KeyError, IndexError, ValueError):
                pass
    return env


def parametrized(path: Path) -> Iterator[tuple[str, dict | None]]:
    """(test name, case as {argname: value}) for every parametrize case; None for a case not rebuilt."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    env = _bindings(tree.body, {})
    scopes = [(tree.body, env)] + [(c.body, _bindings(c.body, dict(env))) for c in tree.body
                                   if isinstance(c, ast.ClassDef)]
    for body, scope in scopes:
        for func in body:
            if not isinstance(func, ast.FunctionDef):
                continue
            for deco in func.decorator_list:
                if not (isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "parametrize"):
                    continue
                try:
                    names = [n.strip() for n in evaluate(deco.args[0], scope).split(",")] \
                        if isinstance(evaluate(deco.args[0], scope), str) else evaluate(deco.args[0], scope)
                except Unevaluable:
                    continue
                values = deco.args[1]
                items = values.elts if isinstance(values, (ast.List, ast.Tuple)) else []
                for item in items:
                    if isinstance(item, ast.Call) and getattr(item.func, "attr", "") == "param":
                        item = ast.Tuple(elts=item.args)
                    try:
                        value = evaluate(item, scope)
                    except (Unevaluable, TypeError, KeyError, IndexError, ValueError, AttributeError):
                        yield func.name, None
                        continue
                    value = value if len(names) > 1 else [value]
                    yield func.name, dict(zip(names, value, strict=False))


# ---- Presidio

# Presidio's recognizers of the other numbers that identify a person. Left out, as not a person's identifier or
# not PII mlgate reports: business and VAT numbers (AU_ABN/ACN, IN_GSTIN, SG_UEN, SE_ORGANISATIONSNUMMER, IT_VAT_CODE,
# DE_VAT_ID, DE_TAX_NUMBER, KR_BRN, DE_HANDELSREGISTER), practice and provider numbers (DE_BSNR, DE_LANR, US_NPI,
# MEDICAL_LICENSE), vehicle plates, bank and routing numbers, URL, MAC, CRYPTO, DATE_TIME and postcodes.
PERSONAL_IDS = ("au_tfn", "au_medicare", "ca_sin", "kr_rrn", "kr_frn", "tr_national_id", "us_itin", "za_id_number",
                "th_tnin", "sg_fin", "ng_nin", "us_mbi", "de_social_security", "de_health_insurance", "ph_tin",
                "us_passport", "uk_passport", "de_passport", "es_passport", "it_passport", "in_passport",
                "kr_passport", "de_id_card", "it_identity_card", "in_voter", "us_driver_license",
                "it_driver_license", "uk_driving_licence", "kr_driver_license", "de_fuehrerschein")
PRESIDIO_FILES = {"credit_card": "credit_card", "phone": "phone", "tr_phone_number": "phone",
                  "us_ssn": "us_ssn", "iban": "iban", "ip": "ip_address", "email": "email",
                  "uk_nino": "national_id", "uk_nhs": "national_id", "in_pan": "national_id",
                  "in_aadhaar": "national_id", "es_nif": "national_id", "es_nie": "national_id",
                  "it_fiscal_code": "national_id", "fi_personal_identity_code": "national_id",
                  "pl_pesel": "national_id", "de_tax_id": "national_id", "se_personnummer": "national_id",
                  # every other recognizer of a number that identifies a person: national and tax numbers,
                  # social and health insurance numbers, passports, identity cards, driving licences
                  **dict.fromkeys(PERSONAL_IDS, "national_id")}


WEAK_SCORE = 0.4  # Presidio's low-confidence band: 0.0-0.4 for a bare SSN, 0.1 or 0.01 for a PAN failing its rule


def _expected_scores(case: dict) -> list[float]:
    """Every score bound Presidio's assertion names for this case (ranges, a score, or none: its max score)."""
    ranges = case.get("expected_score_ranges")
    if isinstance(ranges, (list, tuple)):
        # a bound may be the name of Presidio's own constant ("max": its max score)
        return [1.0 if b == "max" else float(b) for r in ranges if isinstance(r, (list, tuple)) for b in r]
    score = case.get("expected_score", case.get("score"))
    return [float(score)] if isinstance(score, (int, float)) else []


def _weak(case: dict) -> bool:
    scores = _expected_scores(case)
    return bool(scores) and max(scores) <= WEAK_SCORE and min(scores) < WEAK_SCORE


def _phone_defaults(repo: Path) -> dict:
    """``PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS`` as Presidio's source defines it (a fixture may extend it)."""
    path = repo / "presidio-analyzer" / "presidio_analyzer" / "predefined_recognizers" / "generic" / \
        "phone_recognizer.py"
    if not path.exists():
        return {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef) and node.name == "PhoneRecognizer":
            found = _bindings(node.body, {})
            return {f"PhoneRecognizer.{k}": v for k, v in found.items()}
    return {}


def _fixture_regions(tree: ast.Module, env: dict) -> tuple[str, ...]:
    """``supported_regions=…`` of the module's ``recognizer`` fixture (literals, and names from ``env`` such as
    ``PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS``), the regions phonenumbers knows (Presidio's ``UK`` is none:
    phonenumbers ignores it there too), else ()."""
    import phonenumbers

    for func in tree.body:
        if isinstance(func, ast.FunctionDef) and func.name == "recognizer":
            for node in ast.walk(func):
                if isinstance(node, ast.keyword) and node.arg == "supported_regions":
                    try:
                        regions = evaluate(node.value, env)
                    except Unevaluable:
                        return ()
                    return tuple(r for r in regions if r in phonenumbers.SUPPORTED_REGIONS)
    return ()


def presidio_cases(repo: Path) -> tuple[list[Case], int]:
    cases, skipped = [], 0
    for stem, pii_type in PRESIDIO_FILES.items():
        path = repo / "presidio-analyzer" / "tests" / f"test_{stem}_recognizer.py"
        if not path.exists():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        regions = _fixture_regions(tree, _phone_defaults(repo))
        uses_fixture = {f.name for f in tree.body if isinstance(f, ast.FunctionDef)
                        and any(a.arg == "recognizer" for a in f.args.args)}
        for test, case in parametrized(path):
            if case is None:
                skipped += 1
                continue
            text = case.get("text", case.get("iban"))
            if not isinstance(text, str) or not isinstance(case.get("expected_len"), int):
                continue
            policy = (("phone_regions", regions),) if regions and test in uses_fixture else ()
            positive = case["expected_len"] > 0
            cases.append(Case(f"presidio:{stem}", pii_type, text, positive, positive and _weak(case), policy))
    return cases, skipped


# ---- detect-secrets

def detect_secrets_cases(repo: Path) -> tuple[list[Case], int]:
    cases, skipped = [], 0
    for path in sorted((repo / "tests" / "plugins").glob("*_test.py")):
        plugin = path.stem.removesuffix("_test")
        if plugin in ("base", "ip_public"):
            continue
        for _test, case in parametrized(path):
            if case is None:
                skipped += 1
                continue
            text = next((v for k, v in case.items() if k in ("line", "payload", "token", "content", "text",
                                                               "secret", "string")
                         and isinstance(v, str)), None)
            flag = next((v for k, v in case.items() if isinstance(v, bool)), None)
            if flag is None and "expected_secret" in case:
                flag = case["expected_secret"] is not None
            if text is None or flag is None:
                continue
            cases.append(Case(f"detect-secrets:{plugin}", "secret", text, flag))
        if plugin == "keyword":
            env = _bindings(ast.parse(path.read_text(encoding="utf-8")).body, {})
            for name, table in env.items():
                if name.endswith("_TEST_CASES") and isinstance(table, list):
                    cases += [Case(f"detect-secrets:keyword:{name}", "secret", line, expected is not None)
                              for line, expected in table if isinstance(line, str)]
    return cases, skipped


# ---- gitleaks

# Rule files whose secrets are in mlgate's scope: generic credential assignments, private keys, JWTs and
# the providers detect-secrets has plugins for. Everything else is reported separately as out of scope.
GITLEAKS_IN_SCOPE = ("generic", "privatekey", "private_key", "jwt", "aws", "github", "gitlab", "slack",
                     "stripe", "sendgrid", "twilio", "npm", "pypi", "openai", "discord", "telegram",
                     "mailchimp", "square", "artifactory", "azure", "gcp", "huggingface", "digitalocean",
                     "shopify", "anthropic", "curl", "hashicorp", "password")

_GO_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`')


def _go_elements(block: str) -> Iterator[str]:
    """Top-level comma-separated elements of a Go composite literal body (strings and comments aware)."""
    depth, start, i = 0, 0, 0
    while i < len(block):
        ch = block[i]
        if ch in "\"`":
            match = _GO_STRING.match(block, i)
            i = match.end() if match else i + 1
            continue
        if block.startswith("//", i):
            i = block.find("\n", i) if "\n" in block[i:] else len(block)
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            yield block[start:i]
            start = i + 1
        i += 1
    yield block[start:]


_GO_TOKEN = re.compile(r'\s+|//[^\n]*|"(?:[^"\\\n]|\\.)*"|`[^`]*`|\.\.\.|[A-Za-z_][\w.]*|.', re.S)


def _go_string(token: str) -> str:
    if token[0] == "`":
        return token[1:-1]
    return token[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")


class GoHelpers:
    """gitleaks' test-time builders, read from its snapshot as data: the character classes of
    ``utils/patterns.go`` (``AlphaNumeric("30")`` → ``[a-z0-9]{30}``), the sample lines of
    ``GenerateSampleSecrets`` and the format of ``GenerateSampleSecret``. ``secrets.NewSecret(regex)`` is drawn
    here, by ``draw``, as its generator does (a random string the regex matches)."""

    def __init__(self, repo: Path, rng):
        utils = repo / "cmd" / "generate" / "config" / "utils"
        patterns = (utils / "patterns.go").read_text(encoding="utf-8")
        self.classes = {name: _go_string(fmt) for name, fmt in re.findall(
            r"func (\w+)\([^)]*\) string \{\s*return (?:fmt\.Sprintf\()?(`[^`]*`|\"(?:[^\"\\\n]|\\.)*\")", patterns)}
        generate = (utils / "generate.go").read_text(encoding="utf-8")
        body = generate[generate.index("func GenerateSampleSecrets("):]
        body = body[:body.index("replacer")]
        self.templates = [_go_string(value) for value in re.findall(
            r'^\s*"[^"\n]+":\s*("(?:[^"\\\n]|\\.)*"|`[^`]*`),', body, re.M)]
        single = generate[generate.index("func GenerateSampleSecret("):]
        self.single = _go_string(re.search(r'Sprintf\(("(?:[^"\\\n]|\\.)*")', single).group(1))
        self.rng = rng

    def call(self, name: str, args: list[list[str]]) -> list[str]:
        one = [a[0] if len(a) == 1 else None for a in args]
        if None in one:
            raise Unevaluable(name)
        if name == "secrets.NewSecret":
            return [draw(one[0], self.rng)]
        if name == "utils.GenerateSampleSecrets":
            return [t.replace("{i}", one[0]).replace("{I}", one[0].upper()).replace("{s}", one[1])
                    for t in self.templates]
        if name == "utils.GenerateSampleSecret":
            return [self.single.replace("%s", one[0], 1).replace("%s", one[1], 1)]
        if name == "fmt.Sprintf" and one and one[0].count("%s") == len(one) - 1 and "%" not in one[0].replace("%s", ""):
            return [one[0] % tuple(one[1:])]
        if name.startswith("utils.") and name[6:] in self.classes:
            form = self.classes[name[6:]]
            return [form % tuple(one) if "%s" in form else form]
        raise Unevaluable(name)


def go_values(element: str, helpers: GoHelpers | None = None) -> list[str] | None:
    """The strings one element of a Go ``[]string{…}`` or ``append(…)`` spells: literals joined by ``+``
    (comments between them allowed), and with ``helpers`` the calls of gitleaks' test builders (a call that
    yields several lines, spread with ``...``, yields them all); None when it needs anything else."""
    tokens = [t for t in _GO_TOKEN.findall(element) if not t.isspace() and not t.startswith("//")]
    if tokens and tokens[-1] == "...":
        tokens.pop()
    pos = 0

    def expr() -> list[str]:
        nonlocal pos
        parts = [term()]
        while pos < len(tokens) and tokens[pos] == "+":
            pos += 1
            parts.append(term())
        if len(parts) == 1:
            return parts[0]
        if any(len(p) != 1 for p in parts):
            raise Unevaluable("+ of a list")
        return ["".join(p[0] for p in parts)]

    def term() -> list[str]:
        nonlocal pos
        if pos >= len(tokens):
            raise Unevaluable("end")
        token = tokens[pos]
        pos += 1
        if token[0] in "\"`":
            return [_go_string(token)]
        if helpers is None or not (token[0].isalpha() and pos < len(tokens) and tokens[pos] == "("):
            raise Unevaluable(token)
        pos += 1
        args = []
        while tokens[pos:pos + 1] != [")"]:
            args.append(expr())
            if tokens[pos:pos + 1] == [","]:
                pos += 1
            elif tokens[pos:pos + 1] != [")"]:
                raise Unevaluable(token)
        pos += 1
        return helpers.call(token, args)

    try:
        values = expr()
    except (Unevaluable, IndexError, ValueError, TypeError):
        return None
    return values if pos == len(tokens) else None


def draw(pattern: str, rng) -> str:
    """A random string ``pattern`` matches (Go syntax as far as Python's parser reads it): bounded repeats
    uniform over their range, an open one once more than its minimum, one branch of an alternation."""
    try:
        from re import _parser as sre
    except ImportError:  # Python < 3.11
        import sre_parse as sre
    from re import _constants as c
    printable = [chr(i) for i in range(33, 127)]

    def chars(items) -> list[str]:
        pool, negate = set(), False
        for op, av in items:
            if op is c.NEGATE:
                negate = True
            elif op is c.LITERAL:
                pool.add(chr(av))
            elif op is c.RANGE:
                pool.update(chr(i) for i in range(av[0], av[1] + 1))
            elif op is c.CATEGORY:
                pool.update(ch for ch in printable + [" "] if re.fullmatch(
                    {c.CATEGORY_DIGIT: r"\d", c.CATEGORY_WORD: r"\w", c.CATEGORY_SPACE: r"\s"}.get(av, "(?!)"), ch))
            else:
                raise Unevaluable(str(op))
        return sorted(set(printable) - pool) if negate else sorted(pool)

    def emit(parsed) -> str:
        out = []
        for op, av in parsed:
            if op is c.LITERAL:
                out.append(chr(av))
            elif op is c.ANY:
                out.append(rng.choice(string_chars))
            elif op is c.IN:
                out.append(rng.choice(chars(av)))
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
                low, high, sub = av
                high = low + 1 if high == c.MAXREPEAT else high
                out.extend(emit(sub) for _ in range(rng.randint(low, high)))
            elif op is c.SUBPATTERN:
                out.append(emit(av[-1]))
            elif op is c.BRANCH:
                out.append(emit(rng.choice(av[1])))
            elif op is not c.AT:
                raise Unevaluable(str(op))
        return "".join(out)

    string_chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    try:
        return emit(sre.parse(pattern))
    except re.error as err:
        raise Unevaluable(pattern) from err


def _go_blocks(source: str, name: str) -> Iterator[str]:
    """The bodies of ``name := []string{…}`` and ``name = append(name, …)``, and the whole call of
    ``name := utils.GenerateSampleSecrets(…)`` (a block of one element)."""
    for match in re.finditer(name + r"\s*:?=\s*(?:\[\]string\{|append\(" + name + r",|(?=utils\.\w+\())", source):
        call = not match.group().rstrip().endswith(("{", ","))
        depth, i = (0, match.end()) if call else (1, match.end())
        while i < len(source) and (depth or call):
            if source[i] in "\"`":
                string = _GO_STRING.match(source, i)
                i = string.end() if string else i + 1
                continue
            depth += source[i] in "({"
            depth -= source[i] in ")}"
            i += 1
            if call and depth == 0 and source[i - 1] == ")":
                break
        yield source[match.end():i] if call else source[match.end():i - 1]


def gitleaks_cases(repo: Path, generated: bool = True) -> tuple[list[Case], int]:
    """``tps``/``fps`` of every rule; ``generated``: also those gitleaks builds at test time from its helpers
    (a secret drawn from a regex, set in its sample lines), drawn with a fixed seed and labelled apart."""
    import random

    cases, skipped = [], 0
    for path in sorted((repo / "cmd" / "generate" / "config" / "rules").glob("*.go")):
        if path.stem.endswith("_test"):
            continue
        source = path.read_text(encoding="utf-8")
        in_scope = any(path.stem.startswith(prefix) for prefix in GITLEAKS_IN_SCOPE)
        helpers = GoHelpers(repo, random.Random(f"gitleaks:{path.stem}")) if generated else None  # noqa: S311
        for name, positive in (("tps", True), ("fps", False)):
            for block in _go_blocks(source, name):
                for element in _go_elements(block):
                    if not element.strip() or element.strip().startswith("//") and "\n" not in element.strip():
                        continue
                    texts, built = go_values(element), False
                    if texts is None and helpers is not None:
                        texts, built = go_values(element, helpers), True
                    if texts is None:
                        skipped += 1
                        continue
                    label = (f"gitleaks:{path.stem}" + (":generated" if built else "")
                             + ("" if in_scope else ":out-of-scope"))
                    cases.extend(Case(label, "secret", text, positive) for text in texts)
    return cases, skipped
