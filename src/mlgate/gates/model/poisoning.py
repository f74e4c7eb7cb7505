"""``model.poisoning``: find a planted backdoor in the training data through the model's activations.

Activation clustering (Chen et al. 2018): a backdoored model learns the trigger as a feature of its own,
so within the target label the penultimate-layer activations of poisoned records form a separate
cluster. Per label: PCA to ``components`` dimensions, then 2-means.

What decides which small cluster is poison is our own and replaces ART's heuristics. ART's
``ActivationDefence`` flags the smaller cluster by relative size (``smaller``: on digits with 125 poisoned
records it flagged 406 clean ones too, since many digits have two natural writing styles; ``relative-size``
crashes in ART 1.20) and its silhouette analysis cannot tell a style from a trigger either. Here a held-out
**reference set** the attacker did not touch is projected and assigned with the same PCA and centroids: a
natural style appears in the reference data at about the share it has in training, a backdoor cluster
(the trigger is only in poisoned training records) does not. A one-sided binomial test per label, at
``alpha`` over all labels (Bonferroni), flags the clusters missing from the reference data.

2-means may split a backdoor across clusters (poisoned 1s and poisoned 8s need not sit together), so
in a flagged label the suspects are chosen record by record: those whose ``neighbours``-th nearest
reference record is farther than ``outlier_quantile`` of the reference records' own (leave-one-out)
distances. Labels whose cluster test did not fire flag nothing, so a clean model stays clean.
"""

from __future__ import annotations

import json
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
from mlgate.gates.model.policies import PoisoningPolicy

GATE = "model.poisoning"
SUSPECTS_FILE = "poisoning_suspects.json"


@dataclass(frozen=True)
class ClassReport:
    label: int
    size: int
    cluster_share: float
    reference_share: float
    p_value: float
    silhouette: float
    suspects: np.ndarray  # row indices into the training data

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "cluster_share": round(self.cluster_share, 4),
                "reference_share": round(self.reference_share, 4), "p_value": float(f"{self.p_value:.3g}"),
                "silhouette": round(self.silhouette, 4), "flagged": int(len(self.suspects))}


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


def _far_from_reference(train: np.ndarray, reference: np.ndarray, config: PoisoningPolicy) -> np.ndarray:
    """Records whose k-th nearest reference record is farther than the reference's own quantile distance."""
    from sklearn.neighbors import NearestNeighbors

    k = min(config.neighbours, len(reference) - 1)
    index = NearestNeighbors(n_neighbors=k + 1).fit(reference)
    own = index.kneighbors(reference)[0][:, k]  # column 0 is the record itself
    return index.kneighbors(train, n_neighbors=k)[0][:, k - 1] > np.quantile(own, config.outlier_quantile)


def _cluster_class(label: int, rows: np.ndarray, acts: np.ndarray, reference: np.ndarray,
                   config: PoisoningPolicy, alpha: float) -> ClassReport:
    from scipy.stats import binomtest
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    pca = PCA(n_components=min(config.components, len(rows) - 1, acts.shape[1]), random_state=config.seed)
    reduced, reference = pca.fit_transform(acts), pca.transform(reference)
    kmeans = KMeans(n_clusters=2, n_init=10, random_state=config.seed).fit(reduced)
    small = int(np.argmin(np.bincount(kmeans.labels_, minlength=2)))
    in_small = kmeans.labels_ == small
    share = float(in_small.mean())
    hits = int((kmeans.predict(reference) == small).sum())
    p_value = binomtest(hits, len(reference), share, alternative="less").pvalue if share > 0 else 1.0
    silhouette = float(silhouette_score(reduced, kmeans.labels_)) if 0 < share < 1 else 0.0
    flagged = share <= config.max_relative_size and p_value < alpha
    return ClassReport(label, len(rows), share, hits / len(reference), float(p_value), silhouette,
                       rows[_far_from_reference(reduced, reference, config)] if flagged else rows[:0])


def detect(train_acts: np.ndarray, y_train: np.ndarray, ref_acts: np.ndarray, y_ref: np.ndarray,
           config: PoisoningPolicy) -> tuple[list[ClassReport], list[int]]:
    """Per-label reports, and the labels too small to cluster (fewer records than ``2·components``)."""
    labels = np.unique(y_train)
    missing = sorted(set(labels.tolist()) - set(np.unique(y_ref).tolist()))
    if missing:
        raise GateInputError(f"the reference data has no records of label(s) {missing}; every trained label "
                             "needs untouched reference records")
    alpha = config.alpha / len(labels)
    reports, skipped = [], []
    for label in labels:
        rows = np.flatnonzero(y_train == label)
        if len(rows) < 2 * config.components:
            skipped.append(int(label))
            continue
        reports.append(_cluster_class(int(label), rows, train_acts[rows], ref_acts[y_ref == label], config, alpha))
    return reports, skipped


def _write_suspects(reports: list[ClassReport], out_dir: Path | None) -> tuple[str, ...]:
    """Row indices of flagged training records (never their values), for the data owner to inspect."""
    if out_dir is None:
        return ()
    path = Path(out_dir) / SUSPECTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({str(r.label): r.suspects.tolist() for r in reports if len(r.suspects)}) + "\n")
    return (str(path),)


def check_poisoning(model: Any, x_train: Any, y_train: Any, x_reference: Any, y_reference: Any,
                    config: PoisoningPolicy, policy_digest: str, *, model_digest: str, model_uri: str = "",
                    out_dir: Path | None = None) -> GateResult:
    """Cluster ``model``'s activations on its training data; ``(x_reference, y_reference)`` is trusted held-out data."""
    started = utcnow()
    x_train, y_train = check_xy(x_train, y_train, "x_train")
    x_reference, y_reference = check_xy(x_reference, y_reference, "x_reference")
    y_train, y_reference = label_indices(model, y_train), label_indices(model, y_reference)
    reports, skipped = detect(activations(model, x_train, config.layer), y_train,
                              activations(model, x_reference, config.layer), y_reference, config)
    suspects = sum(len(r.suspects) for r in reports)
    fraction = suspects / len(x_train)
    findings = [Finding(f"{GATE}.cluster", Severity.HIGH,
                        f"{len(r.suspects)} training records form an activation cluster absent from the "
                        f"reference data (p={r.p_value:.2g})", f"label {r.label}")
                for r in reports if len(r.suspects)] if fraction > config.max_suspicious_fraction else []
    # A label too small to cluster was not checked: fail closed rather than read it as clean (ADR 0001).
    findings += [Finding(f"{GATE}.unchecked", Severity.HIGH, f"too few training records of this label to "
                         f"cluster (need {2 * config.components})", f"label {label}") for label in skipped]
    return model_result(
        GATE, model_uri=model_uri, model_digest=model_digest, policy_digest=policy_digest,
        tool=tool_info("scikit-learn"), started_at=started,
        metrics={"suspicious": suspects, "suspicious_fraction": round(fraction, 4),
                 "classes": {str(r.label): r.to_dict() for r in reports}, "skipped_classes": skipped,
                 "seed": config.seed},
        thresholds={"max_suspicious_fraction": config.max_suspicious_fraction, "alpha": config.alpha,
                    "max_relative_size": config.max_relative_size},
        findings=findings, artifacts=_write_suspects(reports, out_dir),
    )
