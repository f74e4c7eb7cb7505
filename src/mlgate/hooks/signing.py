"""SigningKeyHook: where promotion's signing key and the trusted public keys come from inside Airflow."""

from __future__ import annotations

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from mlgate.trust.keys import KeyRing, keyring_from_env, pem_blocks, trusted_from_env


class SigningKeyHook(BaseHook):
    """Connection ``mlgate_signing_default`` (type ``mlgate_signing``): password = the PEM private key
    (ECDSA P-256), extra ``trusted_public_keys`` = PEM public key(s) promotion trusts.

    Keep the connection in a secrets backend. Without it, the keys come from the environment
    (``MLGATE_SIGNING_KEY`` / ``MLGATE_SIGNING_KEY_FILE``, ``MLGATE_TRUSTED_KEYS``); a connection without
    a password means no signing key, and promotion refuses.
    """

    conn_name_attr = "signing_conn_id"
    default_conn_name = "mlgate_signing_default"
    conn_type = "mlgate_signing"
    hook_name = "mlgate signing key"

    def __init__(self, signing_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.signing_conn_id = signing_conn_id

    def get_conn(self) -> KeyRing:
        try:
            conn = self.get_connection(self.signing_conn_id)
        except AirflowNotFoundException:
            return keyring_from_env()
        trusted = pem_blocks(conn.extra_dejson.get("trusted_public_keys") or "") or trusted_from_env()
        return KeyRing(signing_pem=conn.password or None, trusted=trusted,
                       source=f"connection {self.signing_conn_id}")
