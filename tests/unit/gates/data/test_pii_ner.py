"""data.pii's NER option (ADR 0052) with a real spaCy pipeline built here: a blank English pipeline and an
entity ruler whose patterns are generated Faker names, saved with ``nlp.to_disk`` and loaded by the gate by path."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
import spacy
from faker import Faker

from mlgate.core.errors import GateInputError
from mlgate.gates.data.integrity import build_manifest
from mlgate.gates.data.pii import PiiPolicy, check_pii
from mlgate.gates.data.pii_stream import check_pii_source
from mlgate.gates.data.sources import open_source

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "0" * 64
fake = Faker("en_GB")
fake.seed_instance(52)
NAMES = list(dict.fromkeys(f"{fake.first_name()} {fake.last_name()}" for _ in range(12)))


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PERSON", "pattern": [{"TEXT": part} for part in name.split()]} for name in NAMES]
                       + [{"label": "ORG", "pattern": fake.company()}])
    path = tmp_path_factory.mktemp("model") / "names"
    nlp.to_disk(path)
    return path


def pin(model: Path) -> str:
    return build_manifest(model, "sha256").digest


def notes(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "notes.csv"
    pa_csv.write_csv(pa.table({"notes": rows}), path)
    return path


def _rows() -> list[str]:
    return [f"{fake.sentence()} Please call {NAMES[0]} back.", fake.sentence(), f"{NAMES[1]} wrote: {fake.sentence()}"]


def test_names_in_free_text_are_found_with_the_model(model, tmp_path):
    path = notes(tmp_path, _rows())
    config = PiiPolicy(types=("person_name",), ner={"spacy_model": str(model), "digest": pin(model)})
    result = check_pii(path, config, DIGEST)
    assert result.status.value == "blocked"
    assert result.metrics["cells_by_type"]["person_name"] == {"notes": 2}
    assert result.thresholds["ner"]["spacy_model"] == str(model)
    assert result.thresholds["ner"]["digest"] == build_manifest(model, "sha256").digest
    without = check_pii(path, PiiPolicy(types=("person_name",)), DIGEST)
    assert without.status.value == "passed" and without.metrics["cells_by_type"]["person_name"] == {}


def test_the_streamed_scan_finds_the_same_names(model, tmp_path):
    path = notes(tmp_path, _rows() * 3)
    config = PiiPolicy(types=("person_name",), ner={"spacy_model": str(model), "digest": pin(model)})
    streamed = check_pii_source(open_source(str(path), 4), config, DIGEST)
    assert streamed.metrics["cells_by_type"] == check_pii(path, config, DIGEST).metrics["cells_by_type"]
    assert streamed.metrics["cells_by_type"]["person_name"] == {"notes": 6}


def test_only_the_labels_the_policy_maps_are_findings(model, tmp_path):
    path = notes(tmp_path, _rows())
    config = PiiPolicy(types=("person_name",),
                       ner={"spacy_model": str(model), "digest": pin(model), "labels": {"ORG": "person_name"}})
    assert check_pii(path, config, DIGEST).metrics["cells_by_type"]["person_name"] == {}


@pytest.mark.parametrize("labels", [{"PER": "person_name"}, {"LOC": "postal_address"}])
def test_a_model_that_predicts_none_of_the_mapped_labels_fails_closed(model, tmp_path, labels):
    path = notes(tmp_path, _rows())
    with pytest.raises(GateInputError, match="predicts none of the labels"):
        check_pii(path, PiiPolicy(ner={"spacy_model": str(model), "digest": pin(model), "labels": labels}), DIGEST)


@pytest.mark.parametrize("name", ["en_core_web_nonexistent_pkg", "missing-dir"])
def test_a_model_that_cannot_be_loaded_fails_closed_naming_it(tmp_path, name):
    model = name if "_" in name else str(tmp_path / name)
    path = notes(tmp_path, _rows())
    with pytest.raises(GateInputError, match="cannot load spaCy model") as error:
        check_pii(path, PiiPolicy(ner={"spacy_model": model, "digest": DIGEST if "/" in model else None}), DIGEST)
    assert model in str(error.value)


@pytest.mark.parametrize("action", ["block", "report", "mask"])
def test_canary_names_found_by_the_model_never_leave_the_scan(model, tmp_path, monkeypatch, caplog, action):
    monkeypatch.setenv("MLGATE_PII_KEY", "canary-key")
    path = notes(tmp_path, _rows())
    with caplog.at_level("DEBUG"):
        config = PiiPolicy(action=action, ner={"spacy_model": str(model), "digest": pin(model)})
        result = check_pii(path, config, DIGEST,
                           out_dir=tmp_path / "out")
    assert result.metrics["cells_by_type"]["person_name"] == {"notes": 2}
    outputs = [json.dumps(result.to_dict()), caplog.text]
    if action == "mask":
        outputs.append(Path(result.artifacts[0]).read_text())
    for output in outputs:
        assert not any(part in output for name in NAMES[:2] for part in name.split())


def test_a_pipeline_folder_swapped_after_the_policy_pinned_it_is_refused(model, tmp_path):
    """redteam6b: the digest was only recorded, so a folder swapped for a pipeline that finds nobody (its
    ruler still lists PERSON, so the label check passes) passed the scan of names it used to find."""
    folder = tmp_path / "pipeline"
    spacy.load(model).to_disk(folder)
    config = PiiPolicy(types=("person_name",), ner={"spacy_model": str(folder),
                                                     "digest": build_manifest(folder, "sha256").digest})
    hollow = spacy.blank("en")
    hollow.add_pipe("entity_ruler").add_patterns([{"label": "PERSON", "pattern": "Nobody Ever"}])
    hollow.to_disk(folder)
    with pytest.raises(GateInputError, match="does not match the policy's pin"):  # main: PASSED, no name found
        check_pii(notes(tmp_path, _rows()), config, DIGEST)


def test_a_pipeline_named_by_path_must_be_pinned(model):
    with pytest.raises(ValueError, match="pin it with ner.digest"):
        PiiPolicy(ner={"spacy_model": str(model)})
    PiiPolicy(ner={"spacy_model": "en_core_web_sm"})  # a package is pinned by the environment it is installed in
