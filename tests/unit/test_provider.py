from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import pytest

from mlgate.get_provider_info import get_provider_info

pytestmark = pytest.mark.unit


def test_provider_info_matches_airflows_schemas():
    import jsonschema

    schema = json.loads(resources.files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)
    yaml_schema = json.loads(resources.files("airflow").joinpath("provider.yaml.schema.json").read_text())
    jsonschema.validate(get_provider_info()["connection-types"], yaml_schema["properties"]["connection-types"])


def test_airflow_lists_the_provider_and_its_connection_fields():
    listed = subprocess.run([sys.executable, "-m", "airflow", "providers", "list", "-o", "json"],
                            capture_output=True, text=True, check=True)
    assert "mlgate" in {p["package_name"] for p in json.loads(listed.stdout)}

    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    assert {"extra__mlflow__registry_uri", "extra__trivy__binary", "extra__trivy__cache_dir",
            "extra__mlgatesigning__trusted_public_keys"} <= set(widgets)
    behaviours = manager.field_behaviours
    assert behaviours["mlflow"]["relabeling"]["host"] == "Tracking URI"
    assert "login" in behaviours["trivy"]["hidden_fields"]
    assert behaviours["mlgatesigning"]["relabeling"]["password"] == "Private key (PEM, ECDSA P-256)"
