"""What counts as a literal secret in a configuration value, and compose interpolation."""

from __future__ import annotations

import pytest

from mlgate.gates.deploy import literals

pytestmark = pytest.mark.unit

KEY = "AKIA" + "Q7Z2XK4M3B5N6V8C"  # assembled at run time: no credential-shaped literal in the repository


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("DB_PASSWORD", "hunter2", True),
    ("DB_PASSWORD", 12345, True),  # an unquoted number in map form is still a literal
    ("FERNET_KEY", "abc", True), ("SECRET_KEY_BASE", "abc", True), ("DB_PASS", "abc", True),
    ("AIRFLOW__CORE__FERNET_KEY", "abc", True),
    ("SECRET_KEY", "${SK:-hunter2}", True),  # a literal default is a literal
    ("API_TOKEN", "${A:-${B}}", False), ("API_TOKEN", "${A}${B}", False), ("API_TOKEN", "$TOKEN", False),
    ("DB_PASSWORD", "${DBP:?required}", False), ("DB_PASSWORD", "${DBP:-}", False),
    ("DB_PASSWORD", "/run/secrets/db_password", False), ("DB_PASSWORD_FILE", "/anywhere/x", False),
    ("DB_PASSWORD", "$(DB_PASSWORD)", False), ("DB_PASSWORD", "", False), ("DB_PASSWORD", None, False),
    ("PRIMARY_KEY", "id", False), ("TOKEN_URL", "https://auth/token", False),
    # red team: camelCase names (Helm values, app settings) were never secret-named
    ("dbPassword", "hunter2", True), ("apiKey", "abc", True), ("clientSecret", "abc", True),
    ("accessToken", "abc", True), ("existingSecret", "db-credentials", False), ("secretName", "db", False),
    ("passwordFile", "/x", False),
], ids=lambda v: str(v)[:24])
def test_is_literal_secret(name, value, expected):
    assert literals.is_literal_secret(name, value) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql://airflow:airflow@postgres/airflow", True),
    ("postgresql+psycopg://airflow:${AIRFLOW_DB_PASSWORD}@postgres:5432/airflow", False),
    ("redis://:${REDIS_PASSWORD:-changeme}@redis:6379/0", True),
    ("http://mlflow:5000", False), ("https://user@host/x", False),
])
def test_url_with_password(text, expected):
    assert literals.url_with_password(text) is expected


@pytest.mark.parametrize(("argv", "expected"), [
    (["mlflow", "server", "--password", "hunter2"], ["password"]),
    (["sh", "-c", "app --api-key=abc123 && TOKEN=xyz run"], ["api-key", "TOKEN"]),
    (["app", "--password", "${PASSWORD}"], []),
    (["app", "--password-file", "/run/secrets/p"], []),
    (["redis-server", "--requirepass", "abc"], []),  # the option's name carries no secret word
])
def test_command_secrets(argv, expected):
    assert literals.command_secrets(argv) == expected


def test_engine_hits_find_secret_shapes_through_the_data_pii_engine():
    assert literals.engine_hits([f"key={KEY}", "hello", "${AWS_KEY}"]) == [True, False, False]


@pytest.mark.parametrize(("value", "env", "expected"), [
    ("${PUID:-0}", {}, "0"), ("${PUID:-0}", {"PUID": "1000"}, "1000"), ("${PUID-0}", {"PUID": ""}, ""),
    ("${A:-${B:-x}}", {}, "x"), ("${A:+on}", {"A": "1"}, "on"), ("${A:?err}", {}, ""), ("plain", {}, "plain"),
    ("${A:-${B:-${C:-0}}}", {}, "0"), ("${A:-${B:-${C:-${D:-0}}}}", {"C": "7"}, "7"), ("$$HOME", {}, "$HOME"),
    ("$U", {"U": "0"}, "0"), ("a${A:-{x}}b", {}, "a{x}b"),
])
def test_interpolate(value, env, expected):
    assert literals.interpolate(value, env) == expected


def test_dotenv_pairs_strip_quotes_export_and_comments():
    text = '# c\nexport A="x y"\nB=\'q\'\nC=v # note\n\nbad line\n'
    assert literals.dotenv(text) == [(2, "A", "x y"), (3, "B", "q"), (4, "C", "v")]
