"""Who is asking, and may they ask this model: hashed API keys, or bearer JWTs from an identity provider.

A key is 32 random bytes (``mlgate serve-key``); the server stores only its SHA-256, which is enough for a
secret with that much entropy (no password stretching needed), and compares a presented key's digest with
every stored digest in constant time, so neither timing nor an early exit tells which keys exist. The key
itself never reaches a log, a metric or the inference log: the client is named by the key's ``id``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlgate.core.errors import GateInputError
from mlgate.core.safe_yaml import load_yaml


@dataclass(frozen=True)
class Identity:
    client: str
    models: frozenset[str]

    def may_use(self, model: str) -> bool:
        return "*" in self.models or model in self.models


class Unauthenticated(Exception):
    """No credential, or one that does not verify: 401."""


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(client: str, models: list[str]) -> tuple[str, dict[str, Any]]:
    """A fresh key (shown once) and the entry to append under ``keys:`` of the server's key file."""
    key = "mlg_" + secrets.token_urlsafe(32)
    return key, {"id": client, "sha256": key_digest(key), "models": sorted(models)}


class KeyStore:
    def __init__(self, entries: list[tuple[bytes, Identity]]) -> None:
        self._entries = entries

    @classmethod
    def from_file(cls, path: str | Path) -> KeyStore:
        data = load_yaml(path, "API key file")
        rows = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(rows, list) or not rows:
            raise GateInputError(f"{path}: expected 'keys:', a list of {{id, sha256, models}}")
        entries = []
        for number, row in enumerate(rows):
            try:
                digest = bytes.fromhex(row["sha256"])
                identity = Identity(str(row["id"]), frozenset(str(m) for m in row["models"]))
            except (KeyError, TypeError, ValueError):
                raise GateInputError(f"{path}: keys[{number}] needs id, sha256 (hex) and models (a list)") from None
            if len(digest) != 32:
                raise GateInputError(f"{path}: keys[{number}].sha256 is not a SHA-256 digest")
            entries.append((digest, identity))
        return cls(entries)

    def identify(self, key: str) -> Identity:
        presented = hashlib.sha256(key.encode()).digest()
        found = None
        for digest, identity in self._entries:  # no early exit: every digest is compared
            if hmac.compare_digest(presented, digest):
                found = identity
        if found is None:
            raise Unauthenticated("unknown API key")
        return found


class JwtVerifier:
    """Bearer tokens signed by the identity provider's key: ``sub`` names the client, the ``models`` claim
    (a list, or a space-separated string) the models it may use."""

    def __init__(self, public_key_path: str | Path, audience: str | None, issuer: str | None) -> None:
        self._key = Path(public_key_path).read_text()
        self._audience, self._issuer = audience, issuer

    def identify(self, token: str) -> Identity:
        import jwt

        try:
            claims = jwt.decode(token, self._key, algorithms=["RS256", "ES256", "EdDSA"], audience=self._audience,
                                issuer=self._issuer, options={"require": ["exp", "sub"]})
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"bearer token refused: {type(exc).__name__}") from None
        models = claims.get("models", [])
        models = models.split() if isinstance(models, str) else models
        if not isinstance(models, list):
            raise Unauthenticated("bearer token's models claim is not a list")
        return Identity(str(claims["sub"]), frozenset(str(m) for m in models))


class Authenticator:
    """``X-API-Key: <key>`` against the key store, or ``Authorization: Bearer <jwt>`` when JWTs are configured
    (an ``Authorization: Bearer <api key>`` is accepted as an API key too)."""

    def __init__(self, keys: KeyStore | None, jwt: JwtVerifier | None) -> None:
        if keys is None and jwt is None:
            raise GateInputError("no API keys and no JWT key: the server never answers unauthenticated requests")
        self._keys, self._jwt = keys, jwt

    def identify(self, headers: Any) -> Identity:
        api_key = headers.get("x-api-key")
        bearer = headers.get("authorization", "")
        token = bearer[7:].strip() if bearer[:7].lower() == "bearer " else None
        if api_key and self._keys:
            return self._keys.identify(api_key)
        if token and self._jwt and token.count(".") == 2:
            return self._jwt.identify(token)
        if token and self._keys:
            return self._keys.identify(token)
        raise Unauthenticated("no credential: send X-API-Key or Authorization: Bearer")
