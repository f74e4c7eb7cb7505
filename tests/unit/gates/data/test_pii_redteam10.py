"""Red team 10s (session 10): the credential-assignment rules of 12ae9b2/4658ca6 (make's ``:::=``/``??=``/
``||=``, a type declared before ``=``, element text on lines of its own, backticked commands).

Values are generated per run (never a real secret); each case is a class of syntax, not one string."""

from __future__ import annotations

import json
import logging
import random
import string
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlgate.core.results import Status
from mlgate.gates.data import secrets
from mlgate.gates.data.pii import PiiPolicy, check_pii, scan
from mlgate.gates.data.pii_detectors import PII_TYPES

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "0" * 64
rng = random.Random(1010)


def token(n: int = 18) -> str:
    """A random credential: lower, upper and digits, no run or sequence (never a placeholder)."""
    while True:
        value = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))
        if (any(c.isdigit() for c in value) and any(c.isupper() for c in value) and any(c.islower() for c in value)
                and secrets.credential_value(value, quoted=False)):
            return value


def secrets_in(text: str) -> list[str]:
    hits = scan({"notes": pa.array([text], pa.large_string())}, PII_TYPES)["notes"]
    return [text[s:e] for s, e in hits.get("secret", [[]])[0]]


# ---- misses fixed: each template takes a fresh value and must give back exactly it
FOUND = [
    'os.environ["API_TOKEN"] = "{v}"', "$config['db_password'] = '{v}';", 'ENV["API_TOKEN"] = "{v}"',
    'token = r"{v}"', "password = b'{v}'", 'token = f"{v}"', 'password = """{v}"""', "password = '''{v}'''",
    '{{\\"token\\":\\"{v}\\"}}', '"{{\\"password\\": \\"{v}\\"}}"',
    'password: str | None = "{v}"', 'let password: &str = "{v}";', 'token: Optional[str] | None = "{v}"',
    'char password[] = "{v}";', 'var token = []byte("{v}")', 'apiToken := []byte("{v}")',
    'String password = new String("{v}");',
    "<ns:password>{v}</ns:password>", "<password><![CDATA[{v}]]></password>",
    "<deployToken>\n\n  {v}\n\n</deployToken>", "<deployToken>\r\n  {v}\r\n</deployToken>",
    'token //= "{v}"', 'token &&= "{v}"',
    '<add key="Password" value="{v}" />', '<input type="password" value="{v}">',
]


@pytest.mark.parametrize("template", FOUND)
def test_credential_in_a_syntax_the_new_rules_missed(template):
    value = token()
    assert secrets_in(template.format(v=value)) == [value]


# ---- false alarms fixed: clean code and prose must give nothing
CLEAN = [
    # the declared type read an element's next attribute as a type: every HTML login form
    '<input type="password" class="form-control">', '<input type="password" name="password_field">',
    '<input type="password" placeholder="Enter your password">', '<input type="password" id="inputPassword3">',
    '<input type="password" autocomplete="current-password">', '<label for="password" class="col-sm-2">',
    '<xs:element name="password" type="xs:string"/>',
    # a quoted phrase naming what it describes: prompts, messages, doc comments
    'token: str = "Authorization header"', 'var apiToken string = "missing api token"',
    'val token: String = "Bearer token missing from the request"', 'password: Optional[str] = "Enter your password"',
    "<AccessToken>\n  Returns the access token of the session\n</AccessToken>",
    "<!-- <password>\n  Password must be eight characters long\n</password> -->",
    'password = getpass.getpass("Enter the DB password: ")',
    # make variables holding a path, an option, a number
    "TOKEN := ./scripts/get-token.sh", "TOKEN_CMD ?= ~/.local/bin/token-helper", "SECRET ::= /var/run/secrets/app",
    "AUTH := --header", "token: float = 3.14159265",
    # Go struct tags stay tags
    'Secret []byte `json:"-"`', 'Password string `json:"password,omitempty" yaml:"password"`',
]


@pytest.mark.parametrize("text", CLEAN)
def test_clean_code_is_not_a_credential(text):
    assert secrets_in(text) == []


# ---- ReDoS: cells built to make the assignment and element rules backtrack
def _adversarial(kind: str, size: int) -> str:
    if kind == "spaces":  # four runs of spaces around the operator: O(k^4) per name (200 spaces: 7 s)
        return ("password" + " " * 5000 + "\n") * (size // 5009)
    if kind == "tabs-colon":
        return ("token:" + " \t" * 2500 + "\n") * (size // 5007)
    if kind == "xml-unclosed":  # every <password opening scanned to the end of the cell (220 KB: 26 s)
        return "<password x" * (size // 11) + "</"
    return "<password " + "a=b " * (size // 4) + "</"


@pytest.mark.parametrize("kind", ["spaces", "tabs-colon", "xml-unclosed", "xml-attrs"])
def test_a_megabyte_adversarial_cell_takes_seconds_not_minutes(kind):
    """CPU time (another process's load stays out of it); linear code takes ~0.4 s here, the backtracking this
    guards against took minutes at this size."""
    text = _adversarial(kind, 1_000_000)
    start = time.process_time()
    secrets.credential_spans(text)
    assert time.process_time() - start < 5.0


def test_a_short_run_of_spaces_after_a_name_no_longer_stalls_the_gate(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"notes": ["password" + " " * 400] * 50}), path)
    start = time.process_time()
    assert check_pii(path, PiiPolicy(), DIGEST).status is Status.PASSED
    assert time.process_time() - start < 10.0


# ---- leaks: a found value reaches no report, exception or log line
@pytest.mark.parametrize("template", ['password: str | None = "{v}"', "<deployToken>\n  {v}\n</deployToken>",
                                      'TOKEN ??= "{v}"', 'os.environ["API_TOKEN"] = "{v}"'])
def test_a_found_value_never_reaches_the_report_or_logs(tmp_path, caplog, template):
    canary = token(24)
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"notes": [template.format(v=canary), "clean"]}), path)
    with caplog.at_level(logging.DEBUG):
        result = check_pii(path, PiiPolicy(), DIGEST)
    assert result.status is not Status.PASSED
    assert canary not in repr(result)
    dumped = json.dumps(result.model_dump(mode="json") if hasattr(result, "model_dump") else vars(result),
                        default=str)
    assert canary not in dumped and canary[4:-4] not in dumped
    assert canary not in caplog.text


# ---- misses not fixed: each needs a rule of its own, or would cost false alarms
NOT_FIXED = {
    'variable "db_password" {{\n  default = "{v}"\n}}': "Terraform: the name and its value are on different lines "
    "of a block; a value never crosses a line end",
    "db.internal:5432:app:admin:{v}": ".pgpass: five colon-separated fields name no credential",
    "mysql -u root -p{v}": "mysql -p glues the password to the flag; -p alone is a common short option",
    "password:\n  {v}": "YAML value on the next line: a value never crosses a line end",
    '@Value("{v}") private String password;': "an annotation before the field: the value precedes the name",
}


# Fixed by the lead after the red team: each syntax's own keyword anchors the bare value after a space.
ANCHORED = ["ENV DB_PASSWORD {v}", "CREATE USER app IDENTIFIED BY '{v}';",
            "ALTER USER app IDENTIFIED WITH mysql_native_password BY '{v}'",
            "machine api.example.net login bob password {v}", "deploy --password {v} --verbose", "cli --api-key={v}"]


@pytest.mark.parametrize("template", ANCHORED)
def test_a_keyword_anchors_a_bare_value_after_a_space(template):
    value = token()
    assert secrets_in(template.format(v=value)) == [value]


@pytest.mark.parametrize("text", ["deploy --password --verbose", "ENV TOKEN_FILE /run/secrets/token",
                                  "--password $DB_PASSWORD", "--pass-file ./pw.txt", "ENV PASSWORD_HINT see the wiki",
                                  "--token ${{ secrets.DEPLOY }}", "the machine asks for a login and a password first"])
def test_an_anchored_form_takes_no_option_path_reference_or_prose(text):
    assert secrets_in(text) == []


@pytest.mark.parametrize("template", [pytest.param(t, marks=pytest.mark.xfail(strict=True, reason="redteam10s: " + r))
                                      for t, r in NOT_FIXED.items()])
def test_credential_in_a_syntax_still_missed(template):
    value = token()
    assert value in "".join(secrets_in(template.format(v=value)))


@pytest.mark.parametrize("name", ["SIGNING_KEY :=", "TOKEN ?=", "api_key ="])
def test_a_base64_key_holding_slashes_is_no_path(name):
    value = "/" + token(8)[:6] + "/" + token(14)  # (the path rule takes word segments only)
    assert secrets_in(f"{name} {value}") == [value]
