"""``model.dos``: the worst-case cost of one prediction on adversarially searched inputs.

A3 (a client of the endpoint) can send whatever fits the schema; an input that costs a thousand times the
median ties up a worker (the STRIDE table's "computationally expensive inputs"). The gate times single-row
predictions of the model *as served* (the whole pipeline, featurizer included) on:

1. ``sample``: held-out rows, for the median;
2. ``deepest-path``: for tree models, the held-out rows whose decision paths are longest;
3. ``long-string`` / ``unseen-category``: per text column, strings of growing length (×4 up to
   ``max_string_length``, stopping once one is over budget) made of distinct tokens (wide sparse features for a
   vectorizer), and a category never seen in training;
4. ``extreme``: per numeric column, very large magnitudes;
5. ``sponge``: a gradient-free search (Shumailov et al., 2021: sponge examples) that mutates the slowest input
   so far and keeps a mutant when it is slower; for neural nets this is the only search that applies.

Latency is the minimum of ``repeats`` runs (noise only ever adds time); peak memory is tracemalloc's peak over
one prediction (numpy reports its buffers to it). It blocks when the worst latency exceeds
``max_latency_ms``, when it exceeds ``max_latency_ratio`` × the median (and ``ratio_floor_ms``, so jitter on
a sub-millisecond model cannot block), or when the worst peak exceeds ``max_memory_mb``. The evidence lists the
worst inputs by digest, never by value (held-out rows may hold personal data). It runs in the isolated child of
the validation gates (ADR 0015): the model runs, so it must not run beside a key. A prediction that raises on
a searched input is counted, not fatal; one that raises on held-out rows is a tool error (fail closed).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mlgate.core.digests import json_digest
from mlgate.core.errors import ToolError
from mlgate.core.results import Finding, GateResult, Severity, utcnow
from mlgate.gates.model.model_eval import is_torch_module, model_result, sample_indices, tool_info
from mlgate.gates.model.policies import DosPolicy

GATE = "model.dos"
UNSEEN = "__mlgate_unseen_category__"




def _predictor(model: Any, columns: list[str] | None) -> Callable[[Any], Any]:
    if is_torch_module(model):
        import torch

        def forward(row: Any) -> Any:
            with torch.no_grad():
                return model(torch.as_tensor(np.asarray(row, dtype=np.float32)[None]))
        return forward
    if columns is not None:
        import pandas as pd

        return lambda row: model.predict(pd.DataFrame([row], columns=columns))
    return lambda row: model.predict(np.asarray(row)[None])


class _Timer:
    def __init__(self, predict: Callable[[Any], Any], config: DosPolicy) -> None:
        self.predict, self.config = predict, config
        self.refused = 0

    def latency(self, row: Any) -> float | None:
        """Milliseconds, the minimum over ``repeats`` runs (one run when already over budget); None if it raised."""
        best = float("inf")
        for _ in range(self.config.repeats):
            began = time.perf_counter()
            try:
                self.predict(row)
            except Exception:  # noqa: BLE001 - a searched input the model refuses is not a cost
                self.refused += 1
                return None
            best = min(best, (time.perf_counter() - began) * 1000)
            if best > self.config.max_latency_ms:
                break
        return best

    def peak_mb(self, row: Any) -> float:
        tracemalloc.start()
        try:
            self.predict(row)
            return tracemalloc.get_traced_memory()[1] / 2**20
        except Exception:  # noqa: BLE001
            return 0.0
        finally:
            tracemalloc.stop()


def _rows(x: Any) -> tuple[list[Any], list[str] | None]:
    if hasattr(x, "iloc"):
        columns = [str(c) for c in x.columns]
        return [dict(zip(columns, r, strict=True)) for r in x.itertuples(index=False, name=None)], columns
    return [np.asarray(r) for r in np.asarray(x)], None


def _deepest(model: Any, x: Any, rows: list[Any], top: int) -> list[Any]:
    """The rows whose decision paths through a tree model (a pipeline's last step) are longest."""
    final, features = model, x
    if hasattr(model, "steps") and len(model.steps) > 1:
        final, features = model[-1], model[:-1].transform(x)
    if not hasattr(final, "decision_path"):
        return []
    paths = final.decision_path(features)
    indicator = paths[0] if isinstance(paths, tuple) else paths
    depth = np.asarray(indicator.sum(axis=1)).ravel()
    return [rows[i] for i in np.argsort(depth)[::-1][:top]]


def _tokens(length: int, rng: np.random.Generator) -> str:
    words = (f"t{n:x}" for n in rng.permutation(max(1, length // 4)))
    return " ".join(words)[:length]


def _crafted(rows: list[Any], columns: list[str] | None, config: DosPolicy, rng: np.random.Generator
             ) -> Iterator[tuple[str, Any, bool]]:
    """(kind, input, grows): ``grows`` marks a step of a growing series that stops once over budget."""
    base = rows[0]
    if columns is None:
        for i in range(len(base)):
            for value in (1e12, -1e12):
                row = np.array(base, dtype=float)
                row[i] = value
                yield "extreme", row, False
        return
    for column in columns:
        if isinstance(base[column], str):
            yield "unseen-category", {**base, column: UNSEEN}, False
            length = 64
            while length <= config.max_string_length:
                yield "long-string", {**base, column: _tokens(length, rng)}, True
                length *= 4
        elif isinstance(base[column], int | float | np.number) and not isinstance(base[column], bool):
            for value in (1e12, -1e12):
                yield "extreme", {**base, column: type(base[column])(value)}, False


def _mutate(row: Any, columns: list[str] | None, scale: dict[Any, float], rng: np.random.Generator) -> Any:
    if columns is None:
        return np.asarray(row, dtype=float) + rng.normal(0, 1, np.shape(row)) * scale[None]
    out = dict(row)
    column = columns[rng.integers(len(columns))]
    value = out[column]
    if isinstance(value, str):
        out[column] = value + " " + _tokens(max(16, len(value)), rng)
    elif isinstance(value, int | float | np.number) and not isinstance(value, bool):
        out[column] = type(value)(value + rng.normal(0, 1) * scale.get(column, 1.0) * 4)
    return out


def _scale(rows: list[Any], columns: list[str] | None) -> dict[Any, Any]:
    if columns is None:
        return {None: np.std(np.asarray(rows, dtype=float), axis=0) + 1e-6}
    return {c: float(np.std([r[c] for r in rows])) + 1e-6 for c in columns
            if all(isinstance(r[c], int | float | np.number) and not isinstance(r[c], bool) for r in rows)}


def _digest(row: Any) -> str:
    plain = row.tolist() if isinstance(row, np.ndarray) else {k: (v.item() if hasattr(v, "item") else v)
                                                              for k, v in row.items()}
    return json_digest(plain)


def check_dos(model: Any, x: Any, config: DosPolicy, policy_digest: str, *, model_digest: str,
              model_uri: str = "", **_: Any) -> GateResult:
    started = utcnow()
    rng = np.random.default_rng(config.seed)
    if len(x) == 0:
        raise ToolError(f"{GATE}: no held-out rows to time")
    chosen = sample_indices(len(x), config.samples, config.seed)
    x = x.iloc[chosen] if hasattr(x, "iloc") else np.asarray(x)[chosen]
    rows, columns = _rows(x)
    timer = _Timer(_predictor(model, columns), config)
    try:
        answer = timer.predict(rows[0])
    except Exception as exc:  # noqa: BLE001 - its text may quote the row: only the type is reported
        raise ToolError(f"{GATE}: the model raised on a held-out row ({type(exc).__name__})") from None
    try:
        if len(answer) != 1:
            raise TypeError
    except TypeError:
        raise ToolError(f"{GATE}: the model returned a malformed prediction for one row "
                        f"({type(answer).__name__})") from None
    baseline = [timer.latency(r) for r in rows]
    if any(t is None for t in baseline):
        raise ToolError(f"{GATE}: the model raised on {sum(t is None for t in baseline)} held-out row(s)")
    median = float(np.median(baseline))
    timed: list[tuple[float, str, Any]] = [(t, "sample", r) for t, r in zip(baseline, rows, strict=True)]
    if not is_torch_module(model):
        timed += [(t, "deepest-path", r) for r in _deepest(model, x, rows, config.report)
                  if (t := timer.latency(r)) is not None]
    for kind, row, grows in _crafted(rows, columns, config, rng):
        latency = timer.latency(row)
        if latency is not None:
            timed.append((latency, kind, row))
            if grows and latency > config.max_latency_ms:
                break
    scale = _scale(rows, columns)
    worst = max(timed, key=lambda t: t[0])
    for _ in range(config.sponge_steps):
        if worst[0] > config.max_latency_ms:
            break
        mutant = _mutate(worst[2], columns, scale, rng)
        latency = timer.latency(mutant)
        if latency is not None:
            timed.append((latency, "sponge", mutant))
            worst = max(worst, timed[-1], key=lambda t: t[0])
    ranked = sorted(timed, key=lambda t: t[0], reverse=True)[:config.report]
    peaks = [timer.peak_mb(r) for _, _, r in ranked]
    median_peak = float(np.median([timer.peak_mb(r) for r in rows[:5]]))
    worst_ms, worst_peak = ranked[0][0], max(peaks)
    ratio = worst_ms / max(median, 1e-6)
    listed = [{"digest": _digest(r), "kind": kind, "latency_ms": round(t, 3), "peak_mb": round(p, 3)}
              for (t, kind, r), p in zip(ranked, peaks, strict=True)]
    findings = []
    where = f"input {listed[0]['digest'][:19]}… ({listed[0]['kind']})"
    if worst_ms > config.max_latency_ms:
        findings.append(Finding(f"{GATE}.latency", Severity.HIGH, f"one prediction took {worst_ms:.1f} ms, over the "
                                f"budget of {config.max_latency_ms:g} ms", where))
    if worst_ms > config.ratio_floor_ms and ratio > config.max_latency_ratio:
        findings.append(Finding(f"{GATE}.ratio", Severity.HIGH, f"one prediction took {ratio:.0f}× the median "
                                f"({worst_ms:.1f} ms vs {median:.2f} ms), over {config.max_latency_ratio:g}×", where))
    if worst_peak > config.max_memory_mb:
        worst_memory = listed[int(np.argmax(peaks))]
        findings.append(Finding(f"{GATE}.memory", Severity.HIGH, f"one prediction peaked at {worst_peak:.1f} MB, "
                                f"over {config.max_memory_mb:g} MB", f"input {worst_memory['digest'][:19]}…"))
    kinds: dict[str, int] = {}
    for _, kind, _ in timed:
        kinds[kind] = kinds.get(kind, 0) + 1
    return model_result(
        GATE, model_uri=model_uri, model_digest=model_digest, policy_digest=policy_digest,
        tool=tool_info("scikit-learn"), started_at=started,
        metrics={"median_ms": round(median, 4), "worst_ms": round(worst_ms, 3), "ratio": round(ratio, 2),
                 "median_peak_mb": round(median_peak, 3), "worst_peak_mb": round(worst_peak, 3),
                 "inputs_timed": kinds, "inputs_refused_by_model": timer.refused, "worst_inputs": listed},
        thresholds={"max_latency_ms": config.max_latency_ms, "max_latency_ratio": config.max_latency_ratio,
                    "ratio_floor_ms": config.ratio_floor_ms, "max_memory_mb": config.max_memory_mb},
        findings=findings)
