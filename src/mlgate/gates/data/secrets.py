"""Secret rules for ``data.pii``: detect-secrets' token plugins, credential assignments, placeholders.

The provider token rules are detect-secrets' own (its plugins are a library; their ``denylist`` regexes
are maintained upstream), so a new token format arrives with an upgrade, not a hand edit. Each rule
runs twice: as RE2 inside Arrow's vectorised prefilter and as Python ``re`` on the cells it keeps.

Credential assignments (``db_pass := "..."``) are ours: detect-secrets' keyword plugin is line-based and
slow, and misses several syntaxes. A value never crosses a line end, and a placeholder
(``AKIAIOSFODNN7EXAMPLE``, ``ghp_xxxx…``, ``${DB_PASSWORD}``, ``changeme``) is never a secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from functools import cache

from mlgate.gates.data.validators import shannon_entropy

# detect-secrets plugins whose rules are provider token formats. Left out: the entropy plugins (every
# hash and UUID), keyword plugins (the assignment rule below covers them), IPPublicDetector (ip_address).
TOKEN_PLUGINS = ("AWSKeyDetector", "ArtifactoryDetector", "AzureStorageKeyDetector", "BasicAuthDetector",
                 "DiscordBotTokenDetector", "GitHubTokenDetector", "GitLabTokenDetector", "MailchimpDetector",
                 "NpmDetector", "OpenAIDetector", "PrivateKeyDetector", "PypiTokenDetector",
                 "SendGridDetector", "SlackDetector", "SquareOAuthDetector", "StripeDetector",
                 "TelegramBotTokenDetector", "TwilioKeyDetector")
# A few widespread formats detect-secrets has no plugin for.
EXTRA_RULES = (
    r"github_pat_[A-Za-z0-9_]{22,255}",
    r"(?:sk|rk)_(?:live|test|prod)_[0-9a-zA-Z]{24,}",
    r"(?:hf_|api_org_)[A-Za-z0-9]{34,}",                    # Hugging Face user and organisation tokens
    r"xox[abposr]-\d{8,}-[0-9A-Za-z-]{10,}",                # Slack tokens in mixed case (upstream: lower)
    r"xapp-\d-[A-Z0-9]{9,}-\d{9,}-[a-f0-9]{32,}",             # Slack app-level tokens
    r"xoxe(?:\.xox[bp])?-\d-[A-Za-z0-9]{100,}",              # Slack rotating (refresh/config) tokens
    r"xoxe-\d{10,}-\d{10,}-\d{10,}-[a-f0-9]{32,}",
    r"[MNO][A-Za-z\d_-]{23,25}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,}",  # Discord bot tokens, newer longer form
    r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,}",  # Slack webhook URLs
    r"dop_v1_[a-f0-9]{64}",
    r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}",
    r"sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_-]{93}AA",         # Anthropic API and admin keys
    r"[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}",          # Azure AD client secrets
    r"hv[sb]\.[A-Za-z0-9_-]{90,}",                           # HashiCorp Vault service and batch tokens
    r"\bs\.[A-Za-z0-9]{24}\b",                               # HashiCorp Vault legacy service tokens
)
_TRAILING_LOOKAHEAD = re.compile(r"\(\?!\\w\)$")


@cache
def token_rules() -> tuple[str, ...]:
    """Regex sources of every token rule, RE2-compatible (a trailing ``(?!\\w)`` is dropped: the
    Python side checks word boundaries itself)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    plugins = {cls.__name__: cls for cls in get_mapping_from_secret_type_to_class().values()}
    missing = [name for name in TOKEN_PLUGINS if name not in plugins]
    if missing:
        raise RuntimeError(f"detect-secrets has no plugin(s) {missing}; pin a version that does")
    rules = [_TRAILING_LOOKAHEAD.sub("", rx.pattern) for name in TOKEN_PLUGINS
             for rx in plugins[name]().denylist]
    return tuple(dict.fromkeys(rules + list(EXTRA_RULES)))


# ---- placeholders

# The leading ``^`` or lookahead holds the first letter of every unanchored alternative: Python's engine then
# rejects most positions on one character class instead of trying each word (several times faster; ADR 0051).
_PLACEHOLDER_WORDS = re.compile(
    r"(?i)(?:^|(?=[esdpcfi_yrx#*.ogv]))(?:"
    r"example|sample|dummy|placeholder|changeme|change_me|fake|insert|_here\b|your[_-]?(?:api|secret|token"
    r"|key|pass)|redacted|xxxx|#{4}|\*{3}|\.{3}|process\.env|os\.environ|getenv|vault:"
    r"|^(?:null|none|true|false|undefined|password|secret|token|string)$"
    # the whole value is a template or reference: ${VAR}, {{ var }}, <value>, %(name)s, $(cmd), $VAR
    r"|^(?:\$\{[^}]*\}|\$?\{\{.*\}\}|<[^>]*>|%\([^)]*\)s?|\$\([^)]*\)|\$[A-Za-z_]\w*)$)")
_UUID = re.compile(r"(?i)^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


_TOKEN_PREFIX = re.compile(r"^[A-Za-z]{2,5}[_-]")
_TOKEN_PREFIX_AND_DIGIT = re.compile(r"^[A-Za-z]{2,5}[_-](?:\d[_-])?")
_RUN_OF_FOUR = re.compile(r"(.)\1{3,}")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def is_placeholder(value: str) -> bool:
    """An example, template or masked value: a marker word, a ``${VAR}``-style reference, a run of one
    character (``xxxx``, ``0000``) taking most of it, or a sequence (``abcdef``, ``123456``)."""
    if _PLACEHOLDER_WORDS.search(value):
        return True
    body = _TOKEN_PREFIX.sub("", value)  # a token's prefix (ghp_, xoxb-) does not count
    if not body:
        return True
    top = max((len(m.group()) for m in _RUN_OF_FOUR.finditer(body)), default=0)
    if top and top * 2 >= len(body):
        return True
    if len(set(body.lower())) <= 3 and len(body) >= 6:
        return True
    alnum = _NOT_ALNUM.sub("", body.lower())
    return len(alnum) >= 6 and (alnum in "abcdefghijklmnopqrstuvwxyz" or alnum in "0123456789012345678")


# ---- JWT

def _jwt_part_is_json(part: str) -> bool:
    try:
        return isinstance(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))), dict)
    except (binascii.Error, ValueError):
        return False


def valid_jwt(text: str) -> bool:
    header, payload, _ = (text.split(".", 2) + ["", ""])[:3]
    return _jwt_part_is_json(header) and _jwt_part_is_json(payload) and not is_placeholder(text)


# The same chunk three times (1234-1234-1234, 123123123) or an ascending run of five (12345, abcde): a
# fixture's filler, never a random token's body.
_FILLER_CHUNK = re.compile(r"(.{3,}?)(?:[-_.]?\1){2,}", re.I)
_FILLER_RUN = re.compile(r"(.)\1{5}|01234|12345|23456|34567|45678|56789|abcde|bcdef", re.I)


def _filler(body: str) -> bool:
    """``_FILLER_CHUNK`` backtracks over every chunk length at every position (most of a token check's time);
    a repeated chunk repeats its first three characters, so a body with no repeated trigram is skipped."""
    if _FILLER_RUN.search(body):
        return True
    lower = body.lower()  # the chunk's backreference is case-insensitive
    trigrams = [lower[i:i + 3] for i in range(len(lower) - 2)]
    return len(set(trigrams)) < len(trigrams) and _FILLER_CHUNK.search(body) is not None


def valid_token(text: str) -> bool:
    """A random token's body: not a placeholder or a fixture's filler, 12+ characters after the prefix,
    and random-looking: a digit somewhere, or upper and lower case mixed about evenly (letter-only
    tokens exist: ``hf_jCBaQng…``). Identifiers that share a prefix (``hf_requiredCharacteristicTypes``,
    ``xoxp-1-initial``) are neither."""
    body = _TOKEN_PREFIX_AND_DIGIT.sub("", text, 1)
    if len(body) < 12 or not _random_looking(body):  # the cheap checks first: all must hold
        return False
    return not is_placeholder(text) and not _filler(body)


def _random_looking(body: str) -> bool:
    if any(ch.isdigit() for ch in body):
        return True
    upper, lower = sum(ch.isupper() for ch in body), sum(ch.islower() for ch in body)
    return min(upper, lower) * 4 >= upper + lower


def valid_private_key(text: str) -> bool:
    """A key header alone (a truncated paste) counts; a full block must hold key material, not ``anything``."""
    if "-----END" not in text:
        return True
    body = text.split("-----", 2)[2].rsplit("-----END", 1)[0]
    return len(re.sub(r"[^A-Za-z0-9+/=]", "", body)) >= 40


# ---- credential assignments

# A key name whose last word is one of these: db_pass, DB_PASSWORD, creds, api-key, "secretKey".
CREDENTIAL_NAMES = (r"(?:pass(?:word|wd|phrase)?|pwd|secret(?:[_-]?key)?|token|(?:api|access|private|auth"
                    r"|client|signing|encryption|master)[_-]?(?:key|secret|token)|apikey|credentials?|creds?"
                    r"|authori[sz]ation|auth)")
# The match starts at the keyword (a prefix such as ``db_`` changes nothing and a lazy prefix class would
# make Python try every position); a suffix may follow after a separator (password_super_secure).
_NAME = CREDENTIAL_NAMES + r"(?P<suffix>(?:[_.-][A-Za-z0-9]+)*)(?![A-Za-z0-9])"
# Names that hold something about a credential, not the credential: CREDENTIALS_ID, secret_name, token_url;
# and credentials meant to be public or short-lived (publicToken, csrf-token).
_NOT_A_VALUE = re.compile(r"(?i)[_.-](?:id|ids|name|url|uri|path|file|type|dir|length|size|count|version|header"
                          r"|field|prefix|format|policy|endpoint|host|user(?:name)?|label|hint|expir\w*|ttl)$")
# (``authenticity_token`` is Rails' CSRF token)
_PUBLIC = re.compile(r"(?i)(?:public|publishable|csrf|xsrf|authenticity)[_.-]?$")
# Assignment operators of common languages and formats; YAML/JSON/INI/.env/shell export use ``:``/``=``.
# A comma (``getenv("api_token", "v")``) and bare spaces only count before a quoted value.
# Bare spaces are an empty operator after the spaces before it (``(?<=[ \t])``): the spaces around an
# operator are possessive, so a run of spaces after a name is read once, not split every way (red team 10:
# ``password`` and 200 spaces took 7 s, each space more ~2% more).
_OPERATOR = r"(?P<op>:::=|::=|:=|\?\?=|\|\|=|//=|&&=|\?=|\.=|\+=|=>|->|<-|===|!==|!=|==|=|:|,|(?<=[ \t]))"
# A declared type between the name and ``=``: ``var apiToken string = "…"`` (Go), ``val token: String = "…"``
# (Kotlin, Swift, TypeScript, Python annotations); only where an ``=`` (not ``==``) follows it.
# A union (``str | None``), a reference (``&str``) or a slice (``[]byte``) is a type too. A type given
# after a quoted name with spaces only (``name="password" class="…"``) is the next attribute of an element.
_TYPE = r"(?:&|\[\])?[A-Za-z_][\w.?]{0,30}(?:<[\w., ?\[\]<>]{1,40}>|\[[\w., ?\[\]]{0,40}\])?"
_DECLARED_TYPE = (r"(?:(?P<typesep>[ \t]*+:[ \t]*+|[ \t]++)(?P<type>" + _TYPE + r"(?:[ \t]*\|[ \t]*" + _TYPE
                  + r"){0,3})(?=[ \t]*=[^=]))?")
# name [quote] [spaces] op [spaces] [HTTP auth scheme] value; spaces never include a line end, so an
# empty value stays empty.
# The first letters CREDENTIAL_NAMES (and CALL's set/with/use) can start with: as a lookahead, Python's
# engine then skips every other position without trying each alternative (twice as fast a scan).
_FIRST_LETTER = r"(?=[acempst])"
ASSIGNMENT = re.compile(
    r"(?i)" + _FIRST_LETTER + _NAME + r"(?P<close>\\?[\"']\]?|\]|\[\d{0,4}\])?" + _DECLARED_TYPE
    + r"[ \t]*+" + _OPERATOR
    + r"[ \t]*+(?:(?:[@&]?\(?|(?:\[\]byte|new[ \t]++String)\()[ \t]*+)?"
    r"(?:(?:Basic|Bearer|Token|Digest)[ \t]++)?"
    # an escaped string inside a string ({\"token\": \"…\"}), a string prefix (r"…", b'…'), triple quotes
    r"(?:\\\"(?P<eq>[^\"\\\r\n]{4,200})\\\"|(?:[rbfuRBFU]{1,2}(?=[\"']))?"
    r"(?:\"(?:\"\")?(?P<dq>[^\"\r\n]{4,200})\"|'(?:'')?(?P<sq>[^'\r\n]{4,200})'|`(?P<bq>[^`\r\n]{4,200})`"
    r"|(?P<bare>[^\s\"'`,;<>(){}\[\]]{6,200})))")
# XML element and function-call forms: <password>v</password>, setPassword("v"), password("v"),
# secret.assign("v") (a setter called on a credential object).
# The element's text may sit on a line of its own between the tags; the closing tag bounds it.
_OWN_LINE = r"[ \t]*+(?:\r?\n[ \t]*+){0,2}"
# A namespace prefix (``<ns:password>``) and a CDATA section hold it too.
# Attributes stop at the next ``<`` (possessive): ``<password x`` repeated without a ``>`` made every
# opening scan to the end of the cell (220 KB: 26 s; red team 10).
XML_ELEMENT = re.compile(r"(?i)<(?P<tag>(?P<pre>[\w.:-]{0,40}?)" + _NAME + r")(?:\s[^<>]*+)?>" + _OWN_LINE
                         + r"(?:<!\[CDATA\[)?(?P<xml>[^<\r\n]{4,200}?)(?:\]\]>)?" + _OWN_LINE + r"</(?P=tag)>")
CALL = re.compile(r"(?i)(?=[acempstuw])(?:set|with|use)?" + CREDENTIAL_NAMES
                  + r"\w{0,12}(?:\.(?:assign|set|put|store|update))?\([ \t]*[\"'](?P<call>[^\"'\r\n]{4,200})[\"']")
# A comparison written value-first: if ("value" == password)
REVERSED = re.compile(r"(?i)[\"'](?P<rv>[^\"'\r\n]{4,200})[\"'][ \t]*(?:===|!==|==|!=)[ \t]*" + _NAME)
# user:password given to a command line (curl -u, --user; also wget/httpie's --user); with no password,
# the user part is the key (curl -u sk_live_…:). Braces around a part are the writer's, ``<x>``/``[x]`` a
# placeholder.
CLI_USER = re.compile(r"(?:^|[ \t])(?:-u|--user|--http-user)[ \t=]+['\"]?\{?(?P<cliuser>[^\s:'\"<>\[\]{}]*)\}?['\"]?:"
                      r"['\"]?\{?(?P<cli>[^\s'\"<>\[\]{}]*)")
# Forms whose keyword anchors a bare value after a space (elsewhere a bare value after a name and a space is prose):
# a long option (``--password v``, ``--api-key=v``), Dockerfile's legacy ``ENV NAME v``, a .netrc line
# (``machine h login u password v``), SQL's ``IDENTIFIED BY 'v'``.
LONG_OPTION = re.compile(r"(?i)(?:^|[ \t])--(?:[a-z0-9]+-)*(?:password|passwd|pass|pwd|token|secret|api-?key"
                         r"|access-key|auth-token)(?:[ \t]+|=)['\"]?(?P<opt>[^\s'\"-][^\s'\"]{5,199})")
DOCKER_ENV = re.compile(r"(?im)^[ \t]*ENV[ \t]+(?P<envname>\w*" + CREDENTIAL_NAMES + r"\w*)[ \t]+"
                        r"(?P<env>[^\s=][^\s]{5,199})[ \t]*$")
NETRC = re.compile(r"(?i)\bmachine[ \t]+\S+(?:[ \t]+(?:login|account)[ \t]+\S+)*[ \t]+password[ \t]+"
                   r"(?P<netrc>\S{6,200})")
SQL_IDENTIFIED = re.compile(r"(?i)\bIDENTIFIED[ \t]+(?:WITH[ \t]+\w+[ \t]+)?BY[ \t]+(?:PASSWORD[ \t]+)?"
                            r"'(?P<sql>[^'\r\n]{4,200})'")
ASSIGNMENT_PREFILTER = r"(?i:" + CREDENTIAL_NAMES + r"|identified[ \t]+(?:with|by))|-u[ \t]|--user|--http-user"

# (also a path, ./scripts/get-token.sh or ~/.config/token; an option, --header; a decimal number, 3.14159)
# A path's segments are words (upper case at most first): a base64 key holding '/' (/9j/4AAQSk…) is no path.
_SEGMENT = r"\.?[A-Za-z0-9_][a-z0-9_.-]*"
_CODE_REFERENCE = re.compile(r"^(?:[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+|[A-Za-z_]\w*\(.*|-{0,2}[a-z]+(?:[_-][a-z]+)*|"
                             r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|(?:\.{1,2}|~|\$[({]\w+[)}])?(?:/" + _SEGMENT + r"){2,}|"
                             r"(?:\.{1,2}|~)/" + _SEGMENT + r"|[+-]?\d+\.\d+(?:e[+-]?\d+)?)$")


# API keys are often UUIDs (Heroku, Octopus Deploy); under any other credential name a UUID is an
# identifier (a request or session id), as detect-secrets' ``is_potential_uuid`` filter holds.
_API_KEY_NAME = re.compile(r"(?i)api[_-]?(?:key|token)|authori[sz]ation")


# A quoted phrase that names a credential describes one: a prompt, a message, a doc comment.
_DESCRIBES = re.compile(r"(?i)\b(?:pass(?:word|wd|phrase)?s?|tokens?|secrets?|keys?|credentials?|auth\w*)\b")


def credential_value(value: str, quoted: bool, uuid_ok: bool = False) -> bool:
    """A value worth calling a password: not a placeholder, not a UUID unless ``uuid_ok``; quoted values
    may be words with spaces, bare ones must not read as code (``config.db_password``, ``getpass()``,
    ``required``, ``DB_PASSWORD``)."""
    value = value.strip()
    if len(value) < (6 if quoted else 8) or is_placeholder(value) or (_UUID.match(value) and not uuid_ok):
        return False
    if quoted:
        if " " in value:  # words: a passphrase, unless they name what they describe ("Enter your password")
            return _DESCRIBES.search(value) is None
        return shannon_entropy(value) >= 2.5
    if _CODE_REFERENCE.match(value):
        return False
    classes = char_classes(value)
    # 3 bits per character, or 70% of what a string this short can reach (a 16-digit hex key: 2.8)
    return classes >= 2 and shannon_entropy(value) >= min(3.0, 0.7 * math.log2(len(value)))


def _names_a_credential(text: str, start: int, suffix: str) -> bool:
    """The keyword at ``start`` begins a word or a camelCase part (not jsonwebtoken), no suffix says it is
    metadata, and no prefix says it is public."""
    before = text[start - 1:start]
    if before.islower() and text[start].islower():
        return False
    return not _NOT_A_VALUE.search(suffix) and not _PUBLIC.search(text[max(0, start - 16):start])


# Attributes of an element whose value is the credential; any other (type, class, id, placeholder) is not.
_VALUE_ATTRIBUTES = frozenset(("value", "content", "default"))


def _attribute_list(text: str, match: re.Match) -> bool:
    """``type="password" class="form-control"``: a "type" after a quoted name (or a name right after ``=``)
    with only spaces between is the element's next attribute, and only ``value="…"`` holds the value."""
    if match.group("type") is None or ":" in match.group("typesep"):
        return False
    quoted_name = (match.group("close") or "").strip("]\\") != "" or text[match.start() - 1:match.start()] == "="
    return quoted_name and match.group("type").lower() not in _VALUE_ATTRIBUTES


# (regex, value group, what every match holds, whether the value is read as a quoted one)
_OTHER_FORMS = ((XML_ELEMENT, "xml", ("</",), True), (CALL, "call", ("(",), True), (REVERSED, "rv", ("==", "!="), True),
                (CLI_USER, "cli", ("-u", "--user", "--http-user"), True), (LONG_OPTION, "opt", ("--",), False),
                (DOCKER_ENV, "env", ("ENV",), False), (NETRC, "netrc", ("machine", "MACHINE"), False),
                (SQL_IDENTIFIED, "sql", ("IDENTIFIED", "identified", "Identified"), True))


def credential_spans(text: str) -> list[tuple[int, int]]:
    """Spans of credential values assigned to a credential-like name, in any of the common syntaxes."""
    spans = []
    for match in ASSIGNMENT.finditer(text):
        if not _names_a_credential(text, match.start(), match.group("suffix")):
            continue
        if _attribute_list(text, match):
            continue
        group = next(g for g in ("eq", "dq", "sq", "bq", "bare") if match.group(g) is not None)
        if group == "bare" and match.group("op").strip() in ("", ","):
            continue  # "pass community." is prose; only a quoted value may follow a name and a space
        if group == "bare" and text[match.end(group):match.end(group) + 1] in ("(", "["):
            continue  # a call or a subscript (password: Optional[str], token = getpass()) is code
        if group == "bq" and " " in match.group(group).strip():
            continue  # `vault read secret/db` is a shell command's output; a raw string secret has no space
        if credential_value(match.group(group), quoted=group != "bare",
                            uuid_ok=bool(_API_KEY_NAME.match(text, match.start()))):
            spans.append(match.span(group))
    for regex, name, needles, quoted in _OTHER_FORMS:
        if not any(needle in text for needle in needles):  # what every match of the form holds
            continue
        for match in regex.finditer(text):
            if name == "call" and text[match.start() - 1:match.start()].islower() and text[match.start()].islower():
                continue  # getpass("Enter the password: ") and bypass(…) are calls of other words
            if name == "xml" and not _names_a_credential(text, match.start("tag") + len(match.group("pre")),
                                                         match.group("suffix")):
                continue
            if name == "env" and _NOT_A_VALUE.search(match.group("envname")):
                continue  # ENV TOKEN_FILE /run/secrets/x names where the secret is
            group = "cliuser" if name == "cli" and not match.group("cli") else name
            if credential_value(match.group(group), quoted=quoted):
                spans.append(match.span(group))
    return spans


_CLASSES = tuple(re.compile(p) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))


def char_classes(value: str) -> int:
    """How many of lower case, upper case, digits and other characters ``value`` holds."""
    return sum(rx.search(value) is not None for rx in _CLASSES)


def high_entropy(token: str) -> bool:
    """A credential-like token: long enough, several character classes, not repetitive, no placeholder."""
    if is_placeholder(token):
        return False
    classes = char_classes(token)
    return len(token) >= 8 and classes >= 2 and shannon_entropy(token) >= 3.0
