"""One redaction function for every place an error or a value becomes text (ADR 0005, 0013).

A misconfigured key setting (a *path* setting that holds the PEM itself) must not carry the private key
into an exception, and from there into version tags, the audit trail, gate JSON, XCom or stderr. So
anything that looks like key material is replaced before text leaves mlgate: PEM blocks (also a block
cut short by truncation, or pasted on one line), long mixed-case base64 runs (a PEM body without its
armour), and every secret registered by the code that holds it (the configured signing key).
Lower-case hex digests stay readable: they are evidence, not secrets.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[REDACTED key material]"
_PEM = re.compile(r"-----BEGIN[^\n-]{0,60}-----.*?(?:-----END[^\n-]{0,60}-----|\Z)", re.DOTALL)
_PEM_TAIL = re.compile(r"\A.*?-----END[^\n-]{0,60}-----", re.DOTALL)  # a message cut before BEGIN
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{48,}")
_SECRETS: set[str] = set()
_LOCK = threading.Lock()


def register_secret(value: str | bytes | None) -> None:
    """Redact ``value`` (and each of its whitespace-separated parts of 16+ characters: a PEM's body lines,
    also when pasted on one line) from all later text."""
    if not value:
        return
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    parts = {text.strip(), *text.split()}
    with _LOCK:
        _SECRETS.update(p for p in parts if len(p) >= 16 and "-----" not in p)


def _looks_like_base64_secret(run: str) -> bool:
    """Mixed case and digits, and not a path (a base64 body has a '/' every ~64 characters, a path every few)."""
    mixed = any(c.isupper() for c in run) and any(c.islower() for c in run) and any(c.isdigit() for c in run)
    return mixed and run.count("/") <= len(run) // 20


def redact(text: object) -> str:
    """``str(text)`` with key material replaced by :data:`REDACTED`."""
    out = _PEM.sub(REDACTED, str(text))
    out = _PEM_TAIL.sub(REDACTED, out)
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        out = out.replace(secret, REDACTED)
    return _BASE64_RUN.sub(lambda m: REDACTED if _looks_like_base64_secret(m.group()) else m.group(), out)


def redact_uri(uri: str) -> str:
    """``https://user:pw@host/p?sig=…`` → ``https://host/p``; plain paths are kept as they are."""
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        return uri
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
