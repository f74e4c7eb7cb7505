import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlgate.gates.data.sources import open_source

pytestmark = pytest.mark.unit


def test_a_slow_consumer_holds_a_few_batches_not_the_dataset(tmp_path):
    """A gate that takes its time per batch (data.pii) must not find the rest of the dataset decoded ahead
    of it: Arrow's allocation stays within a few batches, whatever the files' size and count."""
    rng = np.random.default_rng(0)
    rows, files, batch_rows = 100_000, 16, 10_000
    for index in range(files):
        folder = tmp_path / f"day=2026-11-{index + 1:02d}"
        folder.mkdir()
        pq.write_table(pa.table({f"x{i}": rng.random(rows) for i in range(8)}), folder / "part.parquet",
                       row_group_size=batch_rows)
    decoded = files * rows * 8 * 8  # float64 cells
    baseline, peak, batches = pa.total_allocated_bytes(), 0, 0
    for _ in open_source(tmp_path, batch_rows).batches():
        peak = max(peak, pa.total_allocated_bytes() - baseline)
        batches += 1
        time.sleep(0.01)  # the consumer is slower than the reader
    assert batches == files * rows // batch_rows
    one_batch = batch_rows * 8 * 8
    # About ten batches (decoded row group, page buffers, the batch handed out); the margin absorbs what other
    # threads of a full test run allocate from the same pool (CI once saw 10.4 batches).
    assert peak <= 20 * one_batch <= decoded / 8, (peak, one_batch, decoded)
