"""Peer drift detectors on the windows ``benchmarks/drift.py`` wrote; run in ``.venv-bench`` (their pins clash
with mlgate's). Every peer is used as its documentation shows, with its defaults:

- NannyML ``UnivariateDriftCalculator``: default methods (Jensen–Shannon) and thresholds (mean ± 3 std of the
  reference's chunks), ``chunk_size`` = the window's size; a window alarms when any column alerts.
- Evidently ``DataDriftPreset()``: its per-column method choice and thresholds; alarm when a column drifts.
- alibi-detect ``TabularDrift`` (KS per numeric column, χ² per categorical one), ``p_val=0.05``, Bonferroni.

    .venv-bench/bin/python benchmarks/drift_peers.py DIR   # DIR/manifest.json -> DIR/peers.json
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
CATEGORIES = np.array(["a", "b", "c", "d"])


def frame(x: np.ndarray, names: list[str]) -> pd.DataFrame:
    data = pd.DataFrame(x[:, :-1], columns=names[:-1])
    data[names[-1]] = CATEGORIES[x[:, -1].astype(int)]
    return data


def main() -> None:
    root = Path(sys.argv[1])
    manifest = json.loads((root / "manifest.json").read_text())
    names, tools = manifest["columns"], manifest["tools"]
    ref_x = np.load(root / "reference.npy")
    ref = frame(ref_x, names)
    out: dict = {"decisions": {t: {} for t in tools}, "seconds": {t: 0.0 for t in tools}, "versions": {}}
    if "alibi-detect" in tools:
        import alibi_detect
        from alibi_detect.cd import TabularDrift

        out["versions"]["alibi-detect"] = alibi_detect.__version__
        alibi = TabularDrift(ref_x, p_val=0.05, categories_per_feature={len(names) - 1: None},
                             correction="bonferroni")
    if "evidently" in tools:
        import evidently
        from evidently import Report
        from evidently.presets import DataDriftPreset

        out["versions"]["evidently"] = evidently.__version__
    if "nannyml" in tools:
        import nannyml as nml

        out["versions"]["nannyml"] = nml.__version__
        fitted: dict = {}
    for window in manifest["windows"]:
        x = np.load(root / window["path"])
        for tool in tools:
            clock = time.perf_counter()
            if tool == "alibi-detect":
                alarm = bool(alibi.predict(x)["data"]["is_drift"])
            elif tool == "evidently":
                snap = Report([DataDriftPreset()]).run(current_data=frame(x, names), reference_data=ref)
                alarm = any(m["value"]["count"] > 0 for m in snap.dict()["metrics"]
                            if "DriftedColumnsCount" in str(m.get("metric_id")) + str(m.get("config")))
            else:
                size = len(x)
                if size not in fitted:
                    fitted[size] = nml.UnivariateDriftCalculator(column_names=names, chunk_size=size).fit(ref)
                result = fitted[size].calculate(frame(x, names)).filter(period="analysis").to_df()
                alerts = result.loc[:, [c for c in result.columns if c[-1] == "alert"]]
                alarm = bool(alerts.to_numpy().any())
            out["seconds"][tool] += time.perf_counter() - clock
            out["decisions"][tool][window["id"]] = alarm
    (root / "peers.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
