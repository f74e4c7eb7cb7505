"""SigningKeyHook: where promotion's signing key and the trusted public keys come from inside Airflow."""

from __future__ import annotations

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from mlgate.trust.keys import (
    POLICY_DIGESTS_ENV,
    POLICY_OWNERS_ENV,
    KeyRing,
    env_list,
    keyring_from_env,
    pem_blocks,
    trusted_from_env,
)


class SigningKeyHook(BaseHook):
    """Connection ``mlgate_signing_default`` (type ``mlgatesigning``; one of the old type ``mlgate_signing``
    is read the same, Airflow only warns on its ``_``): password = the PEM private key
    (ECDSA P-256), extra ``trusted_public_keys`` = PEM public key(s) promotion trusts, extra
    ``trusted_policy_digests`` = the policy digests the signer accepts (a list or comma-separated), extra
    ``policy_owner_keys`` = PEM public key(s) whose signature on a policy makes it trusted.

    Keep the connection in a secrets backend. Without it, the keys come from the environment
    (``MLGATE_SIGNING_KEY`` / ``MLGATE_SIGNING_KEY_FILE``, ``MLGATE_TRUSTED_KEYS``); a connection without
    a password means no signing key, and promotion refuses.
    """

    conn_name_attr = "signing_conn_id"
    default_conn_name = "mlgate_signing_default"
    conn_type = "mlgatesigning"  # no "_": Airflow warns on every URI of such a type (RFC 3986 schemes)
    hook_name = "mlgate signing key"

    def __init__(self, signing_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.signing_conn_id = signing_conn_id

    def get_conn(self) -> KeyRing:
        try:
            conn = self.get_connection(self.signing_conn_id)
        except AirflowNotFoundException:
            return keyring_from_env()
        extra = conn.extra_dejson
        trusted = pem_blocks(extra.get("trusted_public_keys") or "") or trusted_from_env()
        digests = extra.get("trusted_policy_digests") or ()
        digests = tuple(d.strip() for d in (digests.split(",") if isinstance(digests, str) else digests)
                        if str(d).strip())
        owners = pem_blocks(extra.get("policy_owner_keys") or "") or env_list(POLICY_OWNERS_ENV)
        return KeyRing(signing_pem=conn.password or None, trusted=trusted, source=f"connection {self.signing_conn_id}",
                       trusted_policy_digests=digests or env_list(POLICY_DIGESTS_ENV), policy_owners=owners)
