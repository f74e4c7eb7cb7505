"""Red team (session 6) of monitor.drift over sketches: a window whose drifted rows reached the sketch under
another type than the reference's (docs/notes/2026-12-04-s6/redteam6.md)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from mlgate.core.errors import GateInputError
from mlgate.gates.monitor.policies import DriftPolicy
from mlgate.gates.monitor.sketches import WindowSketch, check_drift_sketch, sketch_batches

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "0" * 64
CONFIG = DriftPolicy(demote_after=1, of_last=1)


def numbers(rows: int, seed: int, shift: float = 0.0) -> pa.Table:
    return pa.table({"age": pa.array(np.random.default_rng(seed).normal(40 + shift, 10, rows))})


def test_a_column_sketched_as_numbers_and_as_text_is_refused():
    """Partition A: 2000 healthy numbers; partition B: 20000 rows shifted by 3 standard deviations, written as
    text (a schema that changed, a client that sends strings). main: PASSED, the KS test saw partition A only."""
    reference = sketch_batches(numbers(20_000, 1).to_batches())
    shifted = numbers(20_000, 3, shift=30.0)
    as_text = pa.table({"age": pa.compute.cast(shifted["age"], pa.string())})
    assert check_drift_sketch(sketch_batches(shifted.to_batches()), reference, CONFIG, DIGEST).status.value \
        == "blocked"  # the same rows as numbers are drift
    window = sketch_batches(numbers(2000, 2).to_batches())
    with pytest.raises(GateInputError, match=r"\['age'\] hold numbers in some batches"):
        window.merge(sketch_batches(as_text.to_batches()))
        check_drift_sketch(window, reference, CONFIG, DIGEST)
    with pytest.raises(GateInputError, match="hold numbers in some batches"):
        sketch_batches([*numbers(2000, 2).to_batches(), *as_text.to_batches()])
    forged = sketch_batches(numbers(2000, 2).to_batches()).to_dict()
    forged["categorical"] = sketch_batches(as_text.to_batches()).to_dict()["categorical"]
    with pytest.raises(GateInputError, match="hold numbers in some batches"):
        WindowSketch.from_dict(forged)
