from __future__ import annotations

import json

import pytest

from mlgate.core.errors import GateInputError
from mlgate.gates.data.provenance import (
    Producer,
    ProvenanceEntry,
    append_provenance,
    read_provenance,
    redact_uri,
)

pytestmark = pytest.mark.unit


def entry(output_digest="sha256:out", source="s3://bucket/raw/loans.csv", upstream=("sha256:a", "sha256:b")):
    return ProvenanceEntry(source_uri=source, retrieved_at="2026-01-02T03:04:05+00:00",
                           producer=Producer("secure_training", "manual__1", "ingest"),
                           transformation="dropna(subset=[income])", output_digest=output_digest,
                           upstream_digests=upstream)


def test_an_entry_is_one_json_line_and_reads_back():
    line = entry().to_json_line()
    assert line.endswith("\n") and line.count("\n") == 1
    data = json.loads(line)
    assert data["producer"] == {"dag_id": "secure_training", "run_id": "manual__1", "task_id": "ingest"}
    assert data["upstream_digests"] == ["sha256:a", "sha256:b"] and data["version"] == 1
    assert ProvenanceEntry.from_json_line(line) == entry()


def test_entries_are_appended_not_overwritten(tmp_path):
    path = tmp_path / "lineage" / "provenance.jsonl"
    append_provenance(path, [entry("sha256:1")])
    append_provenance(path, [entry("sha256:2"), entry("sha256:3", upstream=[])])
    assert [e.output_digest for e in read_provenance(path)] == ["sha256:1", "sha256:2", "sha256:3"]
    assert read_provenance(path)[2].upstream_digests == ()


@pytest.mark.parametrize(("uri", "recorded"), [
    ("https://user:hunter2@example.org/data.csv?X-Amz-Signature=abc#frag", "https://example.org/data.csv"),
    ("postgresql://etl:pw@db:5432/loans", "postgresql://db:5432/loans"),
    ("s3://bucket/raw/loans.csv", "s3://bucket/raw/loans.csv"),
    ("/data/raw/loans.csv", "/data/raw/loans.csv"),
], ids=["https-credentials-and-token", "dsn-password", "s3", "local-path"])
def test_source_uris_never_keep_credentials(uri, recorded):
    assert redact_uri(uri) == recorded
    assert entry(source=uri).source_uri == recorded
    assert "hunter2" not in entry(source=uri).to_json_line()


@pytest.mark.parametrize("line", ['{"version": 2}', "not json", '{"version": 1, "source_uri": "x"}'],
                         ids=["future-version", "garbage", "incomplete"])
def test_malformed_lines_are_input_errors(line):
    with pytest.raises(GateInputError):
        ProvenanceEntry.from_json_line(line)


def test_an_entry_without_output_digest_is_refused():
    with pytest.raises(GateInputError, match="digest"):
        entry(output_digest="")
