"""What in a configuration value is written literally, and whether that literal is a secret.

Compose and Kubernetes values mix literal text with variables filled in at run time (``${VAR}``,
``${VAR:-default}``, ``$(VAR)``). Only literal text sits in version control, so only literal text can be a
committed secret: ``${A:-${B}}`` and ``${A}${B}`` hold none, ``${A:-hunter2}`` holds ``hunter2``. A path
under ``/run/secrets`` names a secret file, not a secret.

Secret *shapes* (cloud keys, tokens, private keys, ``password=...``) are recognised by the ``data.pii``
secret engine, reached through ``engine_hits`` only, so there is one engine and one place to re-point.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# Names of variables that hold a secret: the last word(s) of the name decide.
SECRET_NAME = re.compile(
    r"(?i)(^|[_.-])(password|passwd|pass|pwd|passphrase|secret|secret_?key(_?base)?|token|api_?key|access_?key|"
    r"private_?key|fernet_?key|signing_?key|encryption_?key|master_?key|auth_?key|client_?secret|"
    r"credentials?|dsn)$")
# Where compose and Kubernetes mount secret files: a value pointing there is a path, not a secret.
SECRET_FILE = re.compile(r"^(/run/secrets/|/var/run/secrets/|/etc/secrets/)")
# scheme://user:password@host — the password part, possibly made of ${...} references.
URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:(?P<password>[^\s/@]+)@")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# The runtime parses a numeric user with Go's strconv.Atoi: "00", "+0" and "-0" are uid 0 too.
_ROOT_USER = re.compile(r"^(root|[+-]?0+)?$")


def _literal(text: str, start: int, stop: str = "", env: Mapping[str, str] | None = None) -> tuple[str, int]:
    """The text of ``text[start:]`` up to an unmatched ``stop`` char, and where parsing ended.

    ``env`` None: the literal part only (variables contribute nothing, defaults their own literal text).
    ``env`` given: the value compose interpolates (variables replaced, defaults applied at any depth).
    """
    out, i = [], start
    while i < len(text):
        ch = text[i]
        if stop and ch == stop:
            return "".join(out), i
        if ch == "$" and text.startswith("$$", i):
            out.append("$")
            i += 2
        elif ch == "$" and text.startswith("${", i):
            inner, i = _braced(text, i + 2, env)
            out.append(inner)
        elif ch == "$" and text.startswith("$(", i) and env is None:  # Kubernetes $(VAR)
            end = text.find(")", i)
            i = end + 1 if end != -1 else len(text)
        elif ch == "$" and _NAME.match(text, i + 1):
            name = _NAME.match(text, i + 1)
            out.append(env.get(name[0], "") if env is not None else "")
            i = name.end()
        else:
            out.append(ch)
            i += 1
    return "".join(out), i


def _braced(text: str, i: int, env: Mapping[str, str] | None) -> tuple[str, int]:
    """After ``${``: a name, then an optional operator with its default, alternative or message."""
    name = _NAME.match(text, i)
    i = name.end() if name else i
    current = env.get(name[0]) if env is not None and name else None
    operator = re.match(r":?[-?+=]", text[i:])
    if operator is None:
        end = text.find("}", i)
        return current or "", (end + 1 if end != -1 else len(text))
    body, end = _literal(text, i + operator.end(), "}", env)
    op = operator.group()
    if env is None:  # ${A:?message} and ${A?message} carry an error message, not a value
        return ("" if "?" in op else body), end + 1
    is_set = bool(current) if op.startswith(":") else current is not None
    if op.endswith(("-", "=")):
        return (current if is_set else body) or "", end + 1
    if op.endswith("+"):
        return (body if is_set else ""), end + 1
    return current or "", end + 1


def literal_text(value: object) -> str:
    """The part of ``value`` written literally (numbers and booleans are literal text)."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return _literal(str(value), 0)[0]


def is_literal_secret(name: str, value: object) -> bool:
    """A secret-named variable whose value is (or embeds) literal text that is not a secret-file path."""
    words = _CAMEL.sub("_", name)  # dbPassword, accessToken: the case of Helm values and app settings
    if not SECRET_NAME.search(words) or words.upper().endswith("_FILE") or words.lower().startswith("existing_"):
        return False
    literal = literal_text(value).strip()
    return bool(literal) and not SECRET_FILE.match(literal) and literal.lower() not in ("true", "false")


def is_root_user(user: str) -> bool:
    """A container user (``uid[:gid]``, already interpolated) that is root, or none at all."""
    return bool(_ROOT_USER.match(user.split(":")[0].strip()))


def url_with_password(text: str) -> bool:
    """A URL/DSN whose password part holds literal text (``://u:${P}@h`` does not)."""
    return any(literal_text(m["password"]).strip() for m in URL_CREDENTIALS.finditer(text))


_OPTION = re.compile(r"(?i)^--?([a-z0-9_.-]+)(?:=(.*))?$")


def command_secrets(argv: Sequence[str]) -> list[str]:
    """Names of secret options given a literal value on a command line: ``--password x``,
    ``--token=x``, ``PASSWORD=x`` (also inside a ``sh -c`` string)."""
    words = [word for arg in argv for word in str(arg).split()]
    names = []
    for i, word in enumerate(words):
        option = _OPTION.match(word)
        assignment = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$", word)
        if option and SECRET_NAME.search(option[1].replace("-", "_")):
            value = option[2] if option[2] is not None else (words[i + 1] if i + 1 < len(words) else "")
            if not value.startswith("-") and is_literal_secret(option[1].replace("-", "_"), value):
                names.append(option[1])
        elif assignment and is_literal_secret(assignment[1], assignment[2]):
            names.append(assignment[1])
    return names


def engine_hits(texts: Sequence[str]) -> list[bool]:
    """For each text: does the data.pii secret engine find a secret shape in its literal part?

    The one adapter to that engine (re-point it here when the engine's entry point changes). Its import
    (pyarrow) is paid only when there is text to look at.
    """
    literals = [literal_text(t) for t in texts]
    if not any(literals):
        return [False] * len(texts)
    import pyarrow as pa

    from mlgate.gates.data.pii_detectors import DETECTORS, find_spans

    found = find_spans(pa.array(literals, pa.string()), DETECTORS["secret"], "")
    return [i in found for i in range(len(texts))]


def env_pairs(environment: object) -> list[tuple[str, object]]:
    """``environment`` of a compose service as (name, value) pairs: mapping or ``KEY=value`` list."""
    if isinstance(environment, Mapping):
        return [(str(k), v) for k, v in environment.items()]
    if isinstance(environment, list):
        return [(str(item).split("=", 1)[0], str(item).split("=", 1)[1] if "=" in str(item) else None)
                for item in environment]
    return []


def dotenv(text: str) -> list[tuple[int, str, str]]:
    """(line, name, value) of a ``.env`` file: ``KEY=value``, optional ``export``, quotes removed."""
    pairs = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.removeprefix("export ").split("=", 1)
        value = value.strip()
        if value[:1] in "\"'" and value.endswith(value[:1]) and len(value) > 1:
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        pairs.append((number, name.strip(), value))
    return pairs


def interpolate(value: object, env: Mapping[str, str]) -> str:
    """``value`` as compose would see it with ``env`` (the ``.env`` beside the file): defaults applied at
    any depth, unset variables empty."""
    return _literal(str(value), 0, env=env)[0]
