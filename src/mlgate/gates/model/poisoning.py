"""``model.poisoning``: find poisoned training rows — a backdoor trigger, flipped labels — by comparing each
label's training rows with a trusted reference the attacker did not touch, in the space the model sees them.

The space: for a torch model, its activations (default: the input of the last linear layer, Chen et al.
2018); for a scikit-learn model, the feature space it is fitted on. A backdoor makes the model learn the
trigger as a feature of its own, so poisoned rows of the target label sit apart from that label's clean rows
there; a flipped label puts a row of one class among another's rows.

Per label, training and reference rows are projected on the ``components`` leading directions of the two
together (label-free, so a poison cluster of any size gets its own direction) and whitened by the
reference's spread. Two detectors score every row against the label's reference rows: ``knn``, the distance
to the ``neighbours``-th nearest reference row (local: scattered poison, flipped labels), and
``mahalanobis``, the whitened distance to the reference centre (global: the robust-covariance score of
SPECTRE, Hayase et al. 2021). Reference rows are scored leave-one-out, and each label's scores are divided by
its reference median, so the reference rows of every label make one pool of ``M`` null scores.

No size cap, no cluster split: the test counts training rows above the ``t``-th highest reference score, per
label and over all labels, for each detector and each cut ``t`` of ``tail_quantiles``. With no poison and
labels whose normalised scores are alike, that count follows an exact negative hypergeometric law
(``poisoning_stats``); the tests share ``alpha`` by Bonferroni. Labels are not alike enough for that alone (a
label with a heavier tail alarmed in 6 of 20 clean logistic regressions), so a pooled test counts only where
the same count against the label's own reference rows — exact, assumption-free, too weak alone at a few dozen
rows — reaches ``alpha`` too (for the test over all labels: the sum of those counts, an exact convolution).
A poisoned label is as likely to be half poison as a hundredth.

What a reference can detect is computed, not hoped for: if an ideal detector (every poisoned row above every
reference row) could not find ``min_poison_fraction`` of the training rows planted in one label with
``power`` at this ``alpha``, the gate blocks as underpowered and names the reference rows it needs (ADR 0037).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlgate.core.errors import GateInputError
from mlgate.core.results import Finding, GateResult, Severity, utcnow
from mlgate.gates.model.model_eval import (
    check_xy,
    evaluating,
    is_torch_module,
    label_indices,
    model_result,
    tool_info,
)
from mlgate.gates.model.poisoning_stats import Power, exceedances, levels, power_check, tail_p_value
from mlgate.gates.model.policies import PoisoningPolicy

GATE = "model.poisoning"
SUSPECTS_FILE = "poisoning_suspects.json"
DETECTORS = ("knn", "mahalanobis")
ALL = "all"  # the test over every label at once (a backdoor spread over labels, all-to-all)
def activations(model: Any, x: np.ndarray, layer: str | None = None, batch_size: int = 512) -> np.ndarray:
    """Flattened activations of ``layer`` (default: the input of the last linear layer) for ``x``.

    Eager modules are read through a forward hook. A torch.export graph (MLflow's ``pt2`` format) runs
    its layers as ``aten`` calls, not modules, so there the default layer is read by interpreting the
    graph and keeping the input of its last ``aten.linear`` call; a named layer cannot be found in it.
    """
    import torch

    if not is_torch_module(model):
        raise GateInputError(f"{GATE} reads a torch nn.Module's activations; got {type(model).__name__}")
    modules = dict(model.named_modules())
    linear = [m for m in modules.values() if isinstance(m, torch.nn.Linear)]
    if layer is not None and layer not in modules:
        raise GateInputError(f"the model has no module named {layer!r}")
    if layer is None and not linear and isinstance(model, torch.fx.GraphModule):
        forward = _last_linear_input(model)
    elif layer is None and not linear:
        raise GateInputError("the model has no nn.Linear layer; name the layer to cluster in the policy")
    else:
        forward = _hooked(model, modules[layer] if layer else linear[-1], take_input=layer is None)
    device = next(model.parameters()).device
    with evaluating(model), torch.no_grad():
        parts = [forward(torch.as_tensor(x[start:start + batch_size], dtype=torch.float32, device=device))
                 for start in range(0, len(x), batch_size)]
    if any(part is None for part in parts):
        where = f"layer {layer!r}" if layer else "a linear layer"
        raise GateInputError(f"{where} never ran, so there are no activations to cluster (a torch.export graph "
                             "runs no layer modules: leave the layer unset to read its last linear call)")
    return torch.cat([part.flatten(1) for part in parts]).cpu().numpy() if parts else np.empty((0, 0))


def _hooked(model: Any, module: Any, take_input: bool) -> Callable[[Any], Any]:
    """A forward pass returning ``module``'s input (or output) in it; ``None`` if it never ran."""
    def forward(batch: Any) -> Any:
        seen: list[Any] = []
        handle = module.register_forward_hook(lambda _m, inputs, output: seen.append(inputs[0] if take_input
                                                                                     else output))
        try:
            model(batch)
        finally:
            handle.remove()
        return seen[-1] if seen else None
    return forward


def _last_linear_input(graph_module: Any) -> Callable[[Any], Any]:
    """A forward pass interpreting a torch.fx graph, returning the input of its last ``aten.linear`` call."""
    import torch

    class Capture(torch.fx.Interpreter):
        captured: Any = None

        def call_function(self, target, args, kwargs):
            if target is torch.ops.aten.linear.default:
                self.captured = args[0]
            return super().call_function(target, args, kwargs)

    def forward(batch: Any) -> Any:
        capture = Capture(graph_module)
        capture.run(batch)
        return capture.captured
    return forward


def features(model: Any, x: np.ndarray, layer: str | None) -> np.ndarray:
    """Where rows are compared: a torch model's activations, or a scikit-learn model's input features."""
    if is_torch_module(model):
        return activations(model, x, layer)
    if not hasattr(model, "predict"):
        raise GateInputError(f"{GATE} audits a torch nn.Module or a fitted scikit-learn estimator; "
                             f"got {type(model).__name__}")
    if layer is not None:
        raise GateInputError(f"the policy names layer {layer!r}, but a scikit-learn model has no layers; "
                             "leave it unset to compare the model's input features")
    return x.reshape(len(x), -1)


def _project(train: np.ndarray, reference: np.ndarray, components: int) -> tuple[np.ndarray, np.ndarray]:
    """Both on the leading directions of the two together, whitened by the reference's spread."""
    pooled = np.vstack([train, reference]).astype(np.float64)
    centre = pooled.mean(0)
    basis = np.linalg.svd(pooled - centre, full_matrices=False)[2][:components]
    t, r = (train - centre) @ basis.T, (reference - centre) @ basis.T
    spread = np.maximum(r.std(0, ddof=1), 1e-3 * np.vstack([t, r]).std(0) + 1e-12)
    return t / spread, r / spread


def _knn_scores(t: np.ndarray, r: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distance to the ``k``-th nearest reference row; a reference row's own distance does not count."""
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=k + 1).fit(r)
    return index.kneighbors(t, n_neighbors=k)[0][:, k - 1], index.kneighbors(r)[0][:, k]


def _mahalanobis_scores(t: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whitened squared distance to the reference mean; each reference row against the mean and spread of
    the others (leave-one-out), so it is scored as a training row would be."""
    m = len(r)
    mean, var = r.mean(0), r.var(0, ddof=1)
    total, squares = r.sum(0), (r ** 2).sum(0)
    loo_mean = (total - r) / (m - 1)
    loo_var = np.maximum((squares - r ** 2 - (m - 1) * loo_mean ** 2) / (m - 2), 1e-12)
    return (((t - mean) ** 2) / var).sum(1), (((r - loo_mean) ** 2) / loo_var).sum(1)


def _label_scores(train: np.ndarray, reference: np.ndarray, config: PoisoningPolicy) -> dict[str, tuple]:
    """Each detector's scores of one label's rows, in units of the label's median reference score."""
    t, r = _project(train, reference, min(config.components, len(reference) - 2, train.shape[1]))
    scores = {"knn": _knn_scores(t, r, config.neighbours), "mahalanobis": _mahalanobis_scores(t, r)}
    return {name: (a / np.median(b), b / np.median(b)) for name, (a, b) in scores.items()}


@dataclass(frozen=True)
class Test:
    """One tail count: training rows of ``label`` (or of every label) above the ``t``-th reference score."""

    label: int | str
    detector: str
    t: int
    count: int
    rows: int
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "detector": self.detector, "t": self.t, "count": self.count,
                "rows": self.rows, "p_value": float(f"{self.p_value:.3g}")}


@dataclass(frozen=True)
class Detection:
    tests: tuple[Test, ...]
    alpha: float  # the level of each test: the policy's alpha over the number of tests
    own: dict[int | str, float]  # label (or ALL) → p-value of its training rows against its own reference only
    guard: float  # the policy's alpha: a pooled test counts only where the own-reference p-value reaches it
    suspects: dict[int, np.ndarray]  # label → row indices into the training data
    sizes: dict[int, tuple[int, int]]  # label → (training rows, reference rows)
    skipped: list[int]

    def p_value(self, label: int | str) -> float:
        """The smallest p-value of the tests of ``label`` (compare with ``alpha``, not the policy's)."""
        return min(test.p_value for test in self.tests if test.label == label)

    @property
    def fired(self) -> tuple[Test, ...]:
        return tuple(test for test in self.tests if test.p_value <= self.alpha and self.own[test.label] <= self.guard)


def _own_reference(scored: dict[int, tuple], quantiles: tuple[float, ...]) -> dict[int | str, float]:
    """Each label's training rows against its own reference rows only (exact, no assumption across labels),
    and the sum of those counts over labels (an exact convolution): the smallest p-value over detectors and
    cuts. Too weak alone at a few dozen reference rows per label, it vetoes the pooled test where a label's
    scores merely have a heavier tail than the others'."""
    from scipy.stats import nhypergeom

    own: dict[int | str, float] = dict.fromkeys(scored, 1.0)
    own[ALL] = 1.0
    for d in DETECTORS:
        for q in quantiles:
            total, null = 0, np.ones(1)
            for label, (_, s) in scored.items():
                train, reference = s[d]
                t = levels(len(reference), (q,))[0]
                count = int(exceedances(train, reference, t).sum())
                own[label] = min(own[label], tail_p_value(count, len(train), len(reference), t))
                total += count
                null = np.convolve(null, nhypergeom(len(train) + len(reference), len(train), t).pmf(
                    np.arange(len(train) + 1)))
            own[ALL] = min(own[ALL], float(null[total:].sum()))
    return own


def detect(train_feats: np.ndarray, y_train: np.ndarray, ref_feats: np.ndarray, y_ref: np.ndarray,
           config: PoisoningPolicy) -> Detection:
    """Every tail-count test, and the training rows behind the ones that fired."""
    labels = np.unique(y_train)
    missing = sorted(set(labels.tolist()) - set(np.unique(y_ref).tolist()))
    if missing:
        raise GateInputError(f"the reference data has no records of label(s) {missing}; every trained label "
                             "needs untouched reference records")
    floor = max(2 * config.components, config.neighbours + 2)
    thin = {int(c): int((y_ref == c).sum()) for c in labels if (y_ref == c).sum() < config.neighbours + 2}
    if thin:
        raise GateInputError(f"the reference data has too few records of label(s) {thin} (label: records); "
                             f"each label needs at least {config.neighbours + 2}")
    scored, skipped = {}, []
    for label in labels:
        rows = np.flatnonzero(y_train == label)
        if len(rows) < floor:
            skipped.append(int(label))
            continue
        scored[int(label)] = (rows, _label_scores(train_feats[rows], ref_feats[y_ref == label], config))
    if not scored:
        return Detection((), config.alpha, {ALL: 1.0}, config.alpha, {}, {}, skipped)
    pool = {d: np.concatenate([s[d][1] for _, s in scored.values()]) for d in DETECTORS}
    cuts = levels(len(pool[DETECTORS[0]]), config.tail_quantiles)
    alpha = config.alpha / (len(DETECTORS) * len(cuts) * (len(scored) + 1))
    tests, above = [], {}
    for d in DETECTORS:
        for t in cuts:
            masks = {label: exceedances(s[d][0], pool[d], t) for label, (_, s) in scored.items()}
            for label, mask in masks.items():
                tests.append(Test(label, d, t, int(mask.sum()), len(mask),
                                  tail_p_value(int(mask.sum()), len(mask), len(pool[d]), t)))
                above[label, d, t] = mask
            count, rows = sum(int(m.sum()) for m in masks.values()), sum(len(m) for m in masks.values())
            tests.append(Test(ALL, d, t, count, rows, tail_p_value(count, rows, len(pool[d]), t)))
    own = _own_reference(scored, config.tail_quantiles)
    # Per label and detector, the rows above the cut with the most rows beyond the clean expectation, among
    # the cuts where the label's test fired, or the test over all labels did and this label's count alone
    # reaches the policy's alpha (so the clean labels beside a poisoned one are not flagged with it).
    p_values = {(t.label, t.detector, t.t): t.p_value for t in tests}
    suspects = {label: np.zeros(len(rows), dtype=bool) for label, (rows, _) in scored.items()}
    for label in scored:
        for d in DETECTORS:
            fired = {t for t in cuts if (p_values[label, d, t] <= alpha and own[label] <= config.alpha)
                     or (p_values[ALL, d, t] <= alpha and own[ALL] <= config.alpha
                         and p_values[label, d, t] <= config.alpha)}
            if fired:
                excess = {t: above[label, d, t].sum() - len(above[label, d, t]) * t / (len(pool[d]) + 1)
                          for t in sorted(fired)}
                suspects[label] |= above[label, d, max(excess, key=excess.get)]
    return Detection(tuple(tests), alpha, own, config.alpha,
                     {label: scored[label][0][mask] for label, mask in suspects.items()},
                     {label: (len(rows), int((y_ref == label).sum())) for label, (rows, _) in scored.items()},
                     skipped)


def reference_power(detection: Detection, n_train: int, n_reference: int, config: PoisoningPolicy) -> Power:
    """Whether an ideal detector finds ``min_poison_fraction`` of the training rows planted in any one label with
    ``power``: through the pooled test (all ``n_reference`` rows, at the level of each test, against the largest
    label) and through the own-reference veto (each label's clean rows, at its share of the reference, against
    its own reference rows, at ``alpha``). The rows needed: the total at which all would, shares kept."""
    poison = math.ceil(config.min_poison_fraction * n_train)
    # A label's clean rows at its share of the trusted reference (poison inflates its training count).
    labels = ([(math.ceil(n_train * m / n_reference), m) for _, m in detection.sizes.values()]
              or [(n_train, n_reference)])
    checks = [(power_check(max(clean for clean, _ in labels), poison, n_reference, config.tail_quantiles,
                           detection.alpha, config.power), n_reference)]
    checks += [(power_check(clean, poison, m, config.tail_quantiles, config.alpha, config.power), m)
               for clean, m in labels]
    needed = (None if any(check.needed is None for check, _ in checks)
              else max(math.ceil(check.needed * n_reference / rows) for check, rows in checks))
    return Power(n_reference, max(clean for clean, _ in labels), poison, min(check.power for check, _ in checks),
                 needed)


def _write_suspects(suspects: dict[int, np.ndarray], out_dir: Path | None) -> tuple[str, ...]:
    """Row indices of flagged training records (never their values), for the data owner to inspect."""
    if out_dir is None:
        return ()
    path = Path(out_dir) / SUSPECTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({str(label): rows.tolist() for label, rows in suspects.items() if len(rows)}) + "\n")
    return (str(path),)


def _findings(detection: Detection, power: Power, fraction: float, config: PoisoningPolicy) -> list[Finding]:
    findings = []
    if fraction > config.max_suspicious_fraction:
        for label, rows in detection.suspects.items():
            fired = [t for t in detection.fired if t.label in (label, ALL)]
            if len(rows) and fired:
                best = min(fired, key=lambda t: t.p_value)
                findings.append(Finding(f"{GATE}.outliers", Severity.HIGH,
                                        f"{len(rows)} training records lie beyond the trusted reference "
                                        f"({best.detector}, p={best.p_value:.2g})", f"label {label}"))
    if not power.adequate:
        needed = f"needs about {power.needed:,}" if power.needed else "no reference size reaches it"
        findings.append(Finding(f"{GATE}.underpowered", Severity.HIGH,
                                f"{power.reference:,} reference records cannot detect {power.poison} poisoned "
                                f"records in one label (min_poison_fraction {config.min_poison_fraction:g}) at "
                                f"alpha {config.alpha:g}: power {power.power:.2f} < {config.power:g}; {needed}",
                                "reference data"))
    # A label too small to score was not checked: fail closed rather than read it as clean (ADR 0001).
    findings += [Finding(f"{GATE}.unchecked", Severity.HIGH, "too few training records of this label to score "
                         f"(need {max(2 * config.components, config.neighbours + 2)})", f"label {label}")
                 for label in detection.skipped]
    return findings


def check_poisoning(model: Any, x_train: Any, y_train: Any, x_reference: Any, y_reference: Any,
                    config: PoisoningPolicy, policy_digest: str, *, model_digest: str, model_uri: str = "",
                    out_dir: Path | None = None) -> GateResult:
    """Compare ``model``'s view of its training rows with ``(x_reference, y_reference)``, trusted held-out data."""
    started = utcnow()
    x_train, y_train = check_xy(x_train, y_train, "x_train")
    x_reference, y_reference = check_xy(x_reference, y_reference, "x_reference")
    y_train, y_reference = label_indices(model, y_train), label_indices(model, y_reference)
    detection = detect(features(model, x_train, config.layer), y_train,
                       features(model, x_reference, config.layer), y_reference, config)
    power = reference_power(detection, len(x_train), len(x_reference), config)
    suspects = sum(len(rows) for rows in detection.suspects.values())
    fraction = suspects / len(x_train)
    return model_result(
        GATE, model_uri=model_uri, model_digest=model_digest, policy_digest=policy_digest,
        tool=tool_info("scikit-learn"), started_at=started,
        metrics={"suspicious": suspects, "suspicious_fraction": round(fraction, 4),
                 "test_alpha": float(f"{detection.alpha:.3g}"),
                 "own_p_value_all": float(f"{detection.own[ALL]:.3g}"),
                 "fired": [t.to_dict() for t in detection.fired],
                 "labels": {str(label): {"train": n, "reference": m, "flagged": len(detection.suspects[label]),
                                         "p_value": float(f"{detection.p_value(label):.3g}"),
                                         "own_p_value": float(f"{detection.own[label]:.3g}")}
                            for label, (n, m) in detection.sizes.items()},
                 "skipped_classes": detection.skipped,
                 "power": {"reference": power.reference, "poison_rows": power.poison,
                           "power": round(power.power, 3), "reference_needed": power.needed}},
        thresholds={"max_suspicious_fraction": config.max_suspicious_fraction, "alpha": config.alpha,
                    "min_poison_fraction": config.min_poison_fraction, "power": config.power},
        findings=_findings(detection, power, fraction, config),
        artifacts=_write_suspects(detection.suspects, out_dir),
    )
