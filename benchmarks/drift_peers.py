"""Peer drift detectors on the windows ``benchmarks/drift.py`` wrote; run in ``.venv-bench`` (their pins clash
with mlgate's). Every peer is used as its documentation shows, with its defaults, and each window gets the
peer's default decision *and* a window score (larger = more drift; the default decision is ``score >= 1``) so
that ``drift.py`` can also compare every tool at one false-alarm rate. The tools run one after the other in the
manifest's order (cheapest first), each over every window:

- NannyML ``UnivariateDriftCalculator``: default methods (Jensen–Shannon) and thresholds (mean ± 3 std of the
  reference's chunks), ``chunk_size`` = the window's size; alarm when any column alerts; score = max over
  columns of value / upper threshold.
- Evidently ``DataDriftPreset()``: its per-column method choice and thresholds; alarm when a column drifts;
  score = max over columns of distance / threshold, or log p / log threshold for a test's p-value.
- alibi-detect ``TabularDrift`` (KS per numeric column, χ² per categorical one), ``p_val=0.05``, Bonferroni;
  score = log of the smallest p-value / log of the corrected level.

    .venv-bench/bin/python benchmarks/drift_peers.py DIR   # DIR/manifest.json -> DIR/peers.json
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # NannyML's analytics: no network here
os.environ.setdefault("DO_NOT_TRACK", "1")
CATEGORIES = np.array(["a", "b", "c", "d"])
_P_FLOOR = 1e-300


def frame(x: np.ndarray, names: list[str]) -> pd.DataFrame:
    data = pd.DataFrame(x[:, :-1], columns=names[:-1])
    data[names[-1]] = CATEGORIES[x[:, -1].astype(int)]
    return data


def p_score(p: float, level: float) -> float:
    """>= 1 exactly when ``p <= level``."""
    return float(np.log(max(p, _P_FLOOR)) / np.log(level))


def evidently_score(snapshot: dict) -> tuple[bool, float]:
    scores, alarm = [], False
    for m in snapshot["metrics"]:
        config = m.get("config", {})
        if config.get("type", "").endswith("DriftedColumnsCount"):
            alarm = alarm or m["value"]["count"] > 0
        elif config.get("type", "").endswith("ValueDrift"):
            value, threshold = float(m["value"]), float(config["threshold"])
            scores.append(p_score(value, threshold) if "p_value" in config["method"] else value / threshold)
    return alarm, max(scores)


def main() -> None:
    root = Path(sys.argv[1])
    manifest = json.loads((root / "manifest.json").read_text())
    names, tools = manifest["columns"], manifest["tools"]
    ref_x = np.load(root / "reference.npy")
    ref = frame(ref_x, names)
    out: dict = {"decisions": {t: {} for t in tools}, "scores": {t: {} for t in tools},
                 "seconds": {t: 0.0 for t in tools}, "versions": {}}
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
    for tool in tools:  # cheapest first (the manifest's order): a run cut short loses the slowest peer's tail
        for window in manifest["windows"]:
            x = np.load(root / window["path"])
            clock = time.perf_counter()
            if tool == "alibi-detect":
                found = alibi.predict(x)["data"]
                alarm, score = bool(found["is_drift"]), p_score(float(np.min(found["p_val"])), found["threshold"])
            elif tool == "evidently":
                snap = Report([DataDriftPreset()]).run(current_data=frame(x, names), reference_data=ref)
                alarm, score = evidently_score(snap.dict())
            else:
                size = len(x)
                if size not in fitted:
                    fitted[size] = nml.UnivariateDriftCalculator(column_names=names, chunk_size=size).fit(ref)
                result = fitted[size].calculate(frame(x, names)).filter(period="analysis").to_df()
                alarm = bool(result.loc[:, [c for c in result.columns if c[-1] == "alert"]].to_numpy().any())
                score = max(float(result[(c, m, "value")].iloc[0] / result[(c, m, "upper_threshold")].iloc[0])
                            for c, m, k in result.columns if k == "value")
            out["seconds"][tool] += time.perf_counter() - clock
            out["decisions"][tool][window["id"]] = alarm
            out["scores"][tool][window["id"]] = score
            partial = root / "peers.json.part"  # after every window: a run cut short keeps what it answered
            partial.write_text(json.dumps(out))
            partial.replace(root / "peers.json")

if __name__ == "__main__":
    main()
