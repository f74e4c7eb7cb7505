"""Natural query traffic on a victim with sparse, near-constant features (scikit-learn's digits): held-out
images, each client at its own lognormal volume over the hour (median 100 queries), as in
``benchmarks/extraction.py``'s natural population. The training split is the reference sample. Seeded."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np


def write_natural_digits(log: Path, reference: Path, end: datetime, clients: int = 40, seed: int = 3) -> None:
    """Writes the inference log of ``clients`` natural clients over the hour before ``end`` to ``log`` and
    the training split, as a CSV reference sample, to ``reference``."""
    import pandas as pd
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from mlgate.gates.monitor.inference_log import InferenceLogger

    x, y = load_digits(return_X_y=True)
    x_train, x_test = train_test_split(x, test_size=0.25, random_state=seed, stratify=y)
    columns = [f"f{i:02d}" for i in range(x.shape[1])]
    reference.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(x_train, columns=columns).to_csv(reference, index=False)
    rng = np.random.default_rng(seed)
    queries = []
    for client in range(clients):
        count = rng.poisson(rng.lognormal(np.log(100), 0.5))
        at = rng.uniform(1, 3599, count)
        queries += [(t, f"natural-{client}", row) for t, row in zip(at, x_test[rng.integers(0, len(x_test), count)],
                                                                    strict=True)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with InferenceLogger(log) as logger:
        for t, client, row in sorted(queries, key=lambda q: q[0]):
            logger.log(client, dict(zip(columns, map(float, row), strict=True)), 0, 0.9,
                       timestamp=end - timedelta(seconds=3600 - float(t)))
