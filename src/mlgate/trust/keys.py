"""Where the signing key and the trusted public keys come from: never from code or the repository.

Sources, in order: an Airflow connection of type ``mlgatesigning`` (resolved by ``SigningKeyHook``,
which builds a :class:`KeyRing` from it), else the environment: ``MLGATE_SIGNING_KEY`` (the PEM text, as
a secrets backend injects it) or ``MLGATE_SIGNING_KEY_FILE`` (a path), and ``MLGATE_TRUSTED_KEYS``
(comma-separated paths of PEM public keys). Without trusted keys, the signing key's own public key is
trusted (the promoting worker checks what it signed); a loader without either refuses to verify.
The policies the signer accepts (ADR 0013): digests pinned in ``MLGATE_TRUSTED_POLICY_DIGESTS``
(comma-separated ``sha256:<hex>``), or policies signed by a policy owner's key (``MLGATE_POLICY_OWNER_KEYS``,
comma-separated PEM paths; default: the trusted keys).

A key ring never prints its private key: ``repr`` names only what is configured, and the configured key
is registered for redaction (``mlgate.core.redaction``) as soon as the ring exists.

Keys are read lazily, so a missing or unreadable key becomes a refusal with a reason, not a crash.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlgate.core.errors import GateInputError
from mlgate.core.redaction import register_secret
from mlgate.trust.attestation import KEY_ENV, load_signer, public_key_pem

if TYPE_CHECKING:
    from securesystemslib.signer import CryptoSigner

KEY_FILE_ENV = "MLGATE_SIGNING_KEY_FILE"
TRUSTED_ENV = "MLGATE_TRUSTED_KEYS"
POLICY_DIGESTS_ENV = "MLGATE_TRUSTED_POLICY_DIGESTS"
POLICY_OWNERS_ENV = "MLGATE_POLICY_OWNER_KEYS"
NO_SIGNING_KEY = "no signing key configured"
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


def pem_blocks(text: str) -> tuple[str, ...]:
    """Every PEM block in ``text``, with its line breaks rebuilt (a PEM pasted into a one-line password
    field loses them)."""
    blocks = []
    for label, body in _PEM.findall(text):
        body = "\n".join(textwrap.wrap("".join(body.split()), 64))
        blocks.append(f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
    return tuple(blocks)


def _read(path: str | Path, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise GateInputError(f"{path}: cannot read the {what}: {exc.strerror}") from None


def public_keys(items: Iterable[str | Path]) -> tuple[str, ...]:
    """PEM public keys from PEM text or from paths of PEM files; an item holding no PEM key is an error."""
    keys: list[str] = []
    for item in items:
        is_text = isinstance(item, str) and "-----BEGIN" in item
        found = pem_blocks(item if is_text else _read(item, "trusted public key"))
        if not found:
            raise GateInputError(f"{'trusted key text' if is_text else item}: holds no PEM public key")
        keys.extend(found)
    return tuple(keys)


@dataclass(frozen=True)
class KeyRing:
    """The configured signing key (PEM text or a file), trusted public keys (PEM texts or files), and the
    policies the signer trusts: pinned digests, and policy owners' public keys (PEM texts or files)."""

    signing_pem: str | None = None
    signing_file: str | None = None
    trusted: tuple[str, ...] = ()
    source: str = "the environment"
    trusted_policy_digests: tuple[str, ...] = ()
    policy_owners: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        register_secret(self.signing_pem)
        if self.signing_file and "-----" in self.signing_file:  # a path setting that holds the key itself
            register_secret(self.signing_file)

    def __repr__(self) -> str:
        key = "PEM text" if self.signing_pem else "a file" if self.signing_file else "none"
        return (f"KeyRing(signing key: {key}, {len(self.trusted)} trusted key(s), "
                f"{len(self.trusted_policy_digests)} pinned policy digest(s), {len(self.policy_owners)} policy "
                f"owner key(s), from {self.source})")

    __str__ = __repr__

    def signer(self) -> CryptoSigner:
        if self.signing_pem:
            blocks = pem_blocks(self.signing_pem)
            return load_signer(blocks[0] if blocks else self.signing_pem)
        if self.signing_file:
            return load_signer(_read(self.signing_file, "signing key"))
        raise GateInputError(f"{NO_SIGNING_KEY} (looked in {self.source}): set the password of an Airflow "
                             f"connection of type mlgate_signing (mlgate_signing_default), or {KEY_ENV} / "
                             f"{KEY_FILE_ENV}")

    @property
    def has_signing_key(self) -> bool:
        return bool(self.signing_pem or self.signing_file)

    def trusted_keys(self) -> tuple[str, ...]:
        if self.trusted:
            return public_keys(self.trusted)
        if self.has_signing_key:
            return (public_key_pem(self.signer()),)
        raise GateInputError(f"no trusted public keys configured: pass them, or set {TRUSTED_ENV} "
                             "(comma-separated paths of PEM public keys)")

    def policy_owner_keys(self) -> tuple[str, ...]:
        """The keys whose signature makes a policy trusted: the configured owners, else the trusted keys."""
        return public_keys(self.policy_owners) if self.policy_owners else self.trusted_keys()


def env_list(variable: str) -> tuple[str, ...]:
    """A comma-separated setting as a tuple of its non-empty items."""
    return tuple(p.strip() for p in os.environ.get(variable, "").split(",") if p.strip())


def trusted_from_env() -> tuple[str, ...]:
    return env_list(TRUSTED_ENV)


def keyring_from_env(trusted: Iterable[str | Path] = ()) -> KeyRing:
    """The keys the environment configures; explicit ``trusted`` keys replace ``MLGATE_TRUSTED_KEYS``."""
    explicit = tuple(str(t) for t in trusted)
    return KeyRing(signing_pem=os.environ.get(KEY_ENV) or None, signing_file=os.environ.get(KEY_FILE_ENV) or None,
                   trusted=explicit or trusted_from_env(), trusted_policy_digests=env_list(POLICY_DIGESTS_ENV),
                   policy_owners=env_list(POLICY_OWNERS_ENV))
