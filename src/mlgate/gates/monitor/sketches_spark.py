"""``monitor.drift``'s window and reference sketches of a data-lake table computed by a Spark job: each
partition builds a ``WindowSketch`` from its Arrow batches with the Arrow path's own ``sketch_batches`` and
returns it serialised; the driver merges them with ``WindowSketch.merge`` (ADR 0049). Merging in another order
than the Arrow path's moves a KLL quantile by at most the sketch's rank error; category counts stay exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlgate.gates.data.sources import Source
from mlgate.gates.data.spark_source import Positioned, layout, map_partitions
from mlgate.gates.monitor.sketches import WindowSketch, sketch_batches


def _sketch(columns: Sequence[str] | None):
    def work(batches: Positioned) -> dict:
        return sketch_batches((batch for batch, _, _ in batches), columns).to_dict()

    return work


def sketch_spark(spark: Any, source: Source, columns: Sequence[str] | None = None) -> WindowSketch:
    """The merged ``WindowSketch`` of a Parquet file or dataset, one sketch per Spark partition."""
    plan = layout(source)
    merged = WindowSketch()
    for part in map_partitions(spark, source, plan, _sketch(columns), list(columns) if columns else None):
        merged.merge(WindowSketch.from_dict(part))
    return merged
