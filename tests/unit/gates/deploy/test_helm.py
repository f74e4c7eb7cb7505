"""Literal secrets in Helm charts: trivy renders charts for its KSV checks, which look for no secret."""

from __future__ import annotations

import pytest

from mlgate.gates.code.source_tree import walk_tree
from mlgate.gates.deploy.config_files import classify
from mlgate.gates.deploy.helm import helm_findings

pytestmark = pytest.mark.unit

SECRET = "hunter2-" + "s3cr3t"
CHART = "apiVersion: v2\nname: c\nversion: 0.1.0\n"
TEMPLATE = """apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers:
      - name: c
        image: nginx
        env:
        - {name: DB_PASSWORD, value: %s}
        - name: MODEL_URI
          value: {{ .Values.modelUri | quote }}
{{- if .Values.extra }}
        - {name: EXTRA, value: "1"}
{{- end }}
"""


def findings(tmp_path, values: str, password: str):
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(CHART)
    (chart / "values.yaml").write_text(values)
    (chart / "templates" / "deploy.yaml").write_text(TEMPLATE % password)
    files = classify(walk_tree(tmp_path).files)
    return helm_findings(files.helm)


@pytest.mark.parametrize(("values", "password", "expected"), [
    (f"db:\n  password: {SECRET}\nmodelUri: s3://m\n", "{{ .Values.db.password | quote }}",
     {("MLG-HELM-001", "chart/values.yaml (db.password)")}),
    ("db:\n  password: ''\nmodelUri: s3://m\n", f'"{SECRET}"',
     {("MLG-K8S-001", "chart/templates/deploy.yaml (Deployment/d)")}),
    (f"dbPassword: {SECRET}\nmodelUri: s3://m\n", "{{ .Values.dbPassword | quote }}",
     {("MLG-HELM-001", "chart/values.yaml (dbPassword)")}),
    ("db:\n  password: ''\n  existingSecret: db\nmodelUri: s3://m\n", "{{ .Values.db.password | quote }}", set()),
], ids=["in-values", "in-template", "camel-case", "none"])
def test_a_literal_secret_in_a_chart_s_values_or_templates_is_a_finding(tmp_path, values, password, expected):
    """Red team: a chart with dbPassword in values.yaml (or a literal in a template) passed."""
    found = findings(tmp_path, values, password)
    assert {(f.id, f.location) for f in found} == expected
    assert not any(SECRET in f.message or SECRET in f.location for f in found)


def test_a_billion_laughs_values_file_is_walked_once_per_node(tmp_path):
    """An aliased node is one object: walking every path through the aliases (9**12 here) would hang."""
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 9) + "]" for i in range(1, 12)]
    lines += [f"db: {{password: {SECRET}}}"]
    found = findings(tmp_path, "\n".join(lines) + "\n", "{{ .Values.db.password | quote }}")
    assert {(f.id, f.location) for f in found} == {("MLG-HELM-001", "chart/values.yaml (db.password)")}
