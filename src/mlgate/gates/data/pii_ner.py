"""Names (and, where the policy maps them, other entities) in free text for ``data.pii``, from a spaCy
pipeline the user installs (ADR 0052). The gate ships no model: without ``ner`` in the policy a name is found
only in a column named for names (ADR 0018).

The model runs only on cells the cheap Arrow prefilter keeps (a capitalised word), in batches of
``batch_size`` through ``nlp.pipe``. A model that cannot be loaded, or that predicts none of the labels the
policy maps, fails the check with an error naming the model, never a pass; no cell text is logged or raised.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from mlgate.core.errors import GateInputError
from mlgate.gates.data.integrity import build_manifest
from mlgate.gates.data.pii_detectors import Span, _outermost
from mlgate.gates.data.policies import NerPolicy, is_path

# A cell can hold a name only if it holds a capitalised word; the rest never reaches the model.
PREFILTER = r"\p{Lu}\p{Ll}"
# Components that never set entities; left out of the loaded pipeline (a tagger or parser costs as much as NER).
_UNUSED = ("tagger", "parser", "lemmatizer", "attribute_ruler", "morphologizer", "senter", "textcat")


@lru_cache(maxsize=4)
def load(model: str, labels: frozenset[str], digest: str | None = None):
    """The spaCy pipeline ``model`` (an installed package's name or a path saved with ``nlp.to_disk``); a
    folder whose digest is not ``digest`` is refused before spaCy reads it."""
    if digest and is_path(model) and Path(model).is_dir():
        _pinned(model, model, digest)
    try:
        import spacy
    except ImportError:
        raise GateInputError(f"data.pii ner: spaCy model {model!r} needs spaCy; install it with "
                             "pip install 'mlgate[ner]'") from None
    try:
        nlp = spacy.load(model, disable=list(_UNUSED))
    except Exception as exc:  # noqa: BLE001 - whatever the loader raises, the check fails naming the model
        raise GateInputError(f"data.pii ner: cannot load spaCy model {model!r} ({type(exc).__name__}); install "
                             "the package or give the path of a pipeline saved with nlp.to_disk") from None
    if digest and not is_path(model):
        _pinned(model, str(nlp.path), digest)
    known = {label for _, component in nlp.pipeline for label in getattr(component, "labels", ())}
    if not known & labels:
        raise GateInputError(f"data.pii ner: spaCy model {model!r} predicts none of the labels the policy maps "
                             f"({sorted(labels)}); it predicts {sorted(known) or 'no entities'}")
    return nlp


def model_info(config: NerPolicy) -> dict[str, str | None]:
    """What the evidence records about the model: its name and version as the pipeline states them, and the
    digest of the files it was loaded from (a path's contents can change under the same name)."""
    nlp = load(config.spacy_model, frozenset(config.labels), config.digest)
    meta = nlp.meta
    return {"spacy_model": config.spacy_model, "name": f"{meta.get('lang', '')}_{meta.get('name', '')}",
            "version": str(meta.get("version", "")), "digest": _digest(str(nlp.path)) if nlp.path else None}


def _pinned(model: str, folder: str, digest: str) -> None:
    found = build_manifest(folder, digest.split(":", 1)[0]).digest
    if found != digest:
        raise GateInputError(f"data.pii ner: spaCy model {model!r}: the folder's digest {found} does not match "
                             f"the policy's pin {digest}")


@lru_cache(maxsize=4)
def _digest(path: str) -> str:
    return build_manifest(path, "sha256").digest


def entity_spans(values: pa.Array, config: NerPolicy, types: tuple[str, ...]) -> dict[str, dict[int, list[Span]]]:
    """Type → row → spans of the entities the model finds whose label the policy maps to one of ``types``."""
    wanted = {label: pii_type for label, pii_type in config.labels.items() if pii_type in types}
    if not wanted:
        return {}
    nlp = load(config.spacy_model, frozenset(config.labels), config.digest)
    rows = pc.indices_nonzero(pc.fill_null(pc.match_substring_regex(values, PREFILTER), False))
    found: dict[str, dict[int, list[Span]]] = {}
    texts = values.take(rows).to_pylist()
    for row, doc in zip(rows.to_pylist(), nlp.pipe(texts, batch_size=config.batch_size), strict=True):
        for ent in doc.ents:
            if ent.label_ in wanted:
                found.setdefault(wanted[ent.label_], {}).setdefault(row, []).append((ent.start_char, ent.end_char))
    return found


def add_entities(by_type: dict[str, dict[int, list[Span]]], values: pa.Array, config: NerPolicy | None,
                 types: tuple[str, ...]) -> None:
    """Merge the model's entity spans of one column into ``by_type`` (the column's spans per type)."""
    if config is None:
        return
    for pii_type, rows in entity_spans(values, config, types).items():
        spans = by_type.setdefault(pii_type, {})
        for row, found in rows.items():
            spans[row] = _outermost(spans.get(row, []) + found)
