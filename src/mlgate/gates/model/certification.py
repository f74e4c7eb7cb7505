"""``model.certification``: certified robust accuracy at the policy's radii — a lower bound, not an attack's estimate.

* L2, randomized smoothing (``smoothing``): the smoothed classifier's prediction is certified within
  ``σ·Φ⁻¹(p_A)`` with probability ``1 - α`` per sample; abstentions count as not certified. Any model with
  logits (torch) or ``predict_proba`` (scikit-learn, through the CPU).
* L∞, interval bound propagation (``interval_bounds``): a torch network whose every layer has a bound rule;
  one it cannot bound is refused (fail closed), never skipped.

A sample counts at radius r only when it is classified correctly and certified at r. Samples come from one
seeded permutation and the smoothing noise from the same seed; the indices' digest, σ, n0, n and α are in
the evidence, so a result can be reproduced on the same device.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.results import Finding, GateResult, Severity, utcnow
from mlgate.gates.model.model_eval import (
    check_xy,
    evaluating,
    indices_digest,
    is_torch_module,
    label_indices,
    model_result,
    new_figure,
    predict_proba,
    sample_indices,
    save_figure,
    tool_info,
    torch_device,
)
from mlgate.gates.model.policies import CertificationPolicy, CertifiedRadius, IntervalPolicy, SmoothingPolicy

GATE = "model.certification"
CURVE_FILE = "certified_accuracy.png"
BOUND_TOLERANCE = 1e-4  # float32 model output vs float64 bounds of the unperturbed box


def _radius_rows(correct_at: Any, radii: tuple[CertifiedRadius, ...], norm: str,
                 findings: list[Finding], detail: str) -> dict[str, dict[str, Any]]:
    """Certified accuracy (with its exact 95% interval) per policy radius; a finding for each shortfall."""
    from mlgate.gates.model.smoothing import clopper_pearson_interval

    rows = {}
    for spec in radii:
        certified, total = correct_at(spec.radius)
        accuracy = certified / total
        rows[f"r{spec.radius:g}"] = {
            "radius": spec.radius, "certified": certified, "certified_accuracy": round(accuracy, 4),
            "certified_accuracy_ci95": [round(v, 4) for v in clopper_pearson_interval(certified, total)],
            "min_accuracy": spec.min_accuracy}
        if accuracy < spec.min_accuracy:
            findings.append(Finding(f"{GATE}.certified_accuracy", Severity.HIGH,
                                    f"{norm} certified accuracy {accuracy:.3f} at radius {spec.radius:g} < "
                                    f"{spec.min_accuracy} ({detail})", f"{norm}_r{spec.radius:g}"))
    return rows


def _sklearn_classify(model: Any) -> Any:
    import torch

    def classify(batch: Any) -> Any:
        probabilities = predict_proba(model, batch.cpu().numpy())
        if not np.isfinite(probabilities).all():
            raise ArithmeticError("the model returned NaN or infinite outputs on noisy inputs")
        return torch.as_tensor(probabilities.argmax(1), device=batch.device)

    return classify


def _smoothing(model: Any, x: np.ndarray, y: np.ndarray, spec: SmoothingPolicy, n_classes: int,
               config: CertificationPolicy, findings: list[Finding]) -> dict[str, Any]:
    from mlgate.gates.model.smoothing import ABSTAIN, certify

    torch_model = is_torch_module(model)
    certificates = certify(model, x, sigma=spec.sigma, n0=spec.n0, n=spec.n, alpha=spec.alpha, n_classes=n_classes,
                           seed=config.seed, batch_size=spec.batch_size, max_seconds=config.max_seconds,
                           device=None if torch_model else "cpu",
                           classify=None if torch_model else _sklearn_classify(model))
    detail = f"σ {spec.sigma:g}, n {spec.n}, α {spec.alpha:g}"
    correct = certificates.prediction == y
    return {"method": "randomized_smoothing", "sigma": spec.sigma, "n0": spec.n0, "n": spec.n, "alpha": spec.alpha,
            "confidence": 1 - spec.alpha, "abstained": int((certificates.prediction == ABSTAIN).sum()),
            "smoothed_accuracy": round(float(correct.mean()), 4),
            "mean_certified_radius": round(float(np.where(correct, certificates.radius, 0).mean()), 6),
            "radii": _radius_rows(lambda r: certificates.certified_accuracy(y, r), spec.radii, "L2", findings,
                                  detail),
            "curve": _l2_curve(certificates.radius, correct)}


def _l2_curve(radius: np.ndarray, correct: np.ndarray) -> list[list[float]]:
    """Certified accuracy at every radius a sample reached: the full curve comes free with the certificates."""
    reached = np.unique(np.r_[0.0, radius[correct]])
    return [[round(float(r), 6), round(float((correct & (radius >= r)).mean()), 4)] for r in reached]


def _interval(model: Any, x: np.ndarray, y: np.ndarray, spec: IntervalPolicy, clip: tuple[float, float],
              deadline: Any, findings: list[Finding]) -> dict[str, Any]:
    import torch

    from mlgate.gates.model.interval_bounds import propagate, trace, worst_margin

    if not is_torch_module(model):
        raise GateInputError(f"L∞ interval bounds need a PyTorch nn.Module, got {type(model).__name__}; "
                             "certify it with 'l2' (randomized smoothing) instead")
    device = next(model.parameters()).device
    graph = trace(model)
    margins = {spec_.radius: [] for spec_ in spec.radii}
    with evaluating(model), torch.no_grad():
        for start in range(0, len(x), spec.batch_size):
            xb = torch.as_tensor(x[start:start + spec.batch_size], device=device)
            yb = torch.as_tensor(y[start:start + spec.batch_size], device=device)
            clean = model(xb).double()
            for radius, parts in margins.items():
                box = propagate(graph, (xb - radius).clamp(*clip).double(), (xb + radius).clamp(*clip).double())
                _check_bounds(box, clean, radius)
                parts.append(worst_margin(box, yb).cpu().numpy())
                deadline.check("interval bound propagation")
    certified = {radius: np.concatenate(parts) > 0 for radius, parts in margins.items()}
    return {"method": "interval_bound_propagation",
            "radii": _radius_rows(lambda r: (int(certified[r].sum()), len(y)), spec.radii, "L∞", findings,
                                  "interval bounds")}


def _check_bounds(box: Any, clean: Any, radius: float) -> None:
    """The box holds the unperturbed input, so its bounds must hold the model's own output: a network whose
    layers do something the bound rules do not model (or NaN) fails here instead of certifying."""
    import torch

    if not (torch.isfinite(box.lower).all() and torch.isfinite(box.upper).all() and torch.isfinite(clean).all()):
        raise ArithmeticError(f"NaN or infinite logits or bounds at L∞ radius {radius:g}")
    slack = BOUND_TOLERANCE * (1 + clean.abs())
    if ((clean < box.lower - slack) | (clean > box.upper + slack)).any():
        raise ToolError(f"interval bounds at L∞ radius {radius:g} do not contain the model's own output: the "
                        "network computes something its layers' bound rules do not model")


def _plot(entries: dict[str, dict[str, Any]], out_dir: Path | None) -> tuple[str, ...]:
    if out_dir is None:
        return ()
    figure = new_figure()
    axes = figure.add_subplot()
    if "l2" in entries:
        points = entries["l2"]["curve"]
        axes.step(*zip(*points, strict=True), where="post", label=f"L2, smoothing σ={entries['l2']['sigma']:g}")
    if "linf" in entries:
        rows = entries["linf"]["radii"].values()
        axes.plot([r["radius"] for r in rows], [r["certified_accuracy"] for r in rows], "o", label="L∞, IBP")
    axes.set(xlabel="radius", ylabel="certified accuracy", ylim=(0, 1.02), title="Certified accuracy")
    axes.grid(alpha=0.3)
    axes.legend()
    return save_figure(figure, out_dir, CURVE_FILE)


def _certify(model: Any, x: np.ndarray, y: np.ndarray, config: CertificationPolicy, clip: tuple[float, float],
             n_classes: int) -> tuple[dict[str, dict[str, Any]], list[Finding]]:
    from mlgate.gates.model.smoothing import Deadline

    deadline, entries, findings = Deadline(config.max_seconds), {}, []
    if config.l2 is not None:
        clock = time.perf_counter()
        entries["l2"] = _smoothing(model, x, y, config.l2, n_classes, config, findings)
        entries["l2"]["seconds"] = round(time.perf_counter() - clock, 3)
    if config.linf is not None:
        clock = time.perf_counter()
        deadline.check("model.certification")
        entries["linf"] = _interval(model, x, y, config.linf, clip, deadline, findings)
        entries["linf"]["seconds"] = round(time.perf_counter() - clock, 3)
    return entries, findings


def check_certification(model: Any, x: Any, y: Any, config: CertificationPolicy, policy_digest: str, *,
                        model_digest: str, model_uri: str = "", out_dir: Path | None = None) -> GateResult:
    """Certify ``model`` on a seeded sample of ``(x, y)`` (held-out rows, in the model's input layout)."""
    started = utcnow()
    x, y = check_xy(x, y)
    clip = config.clip or (float(x.min()), float(x.max()))
    if clip[0] > clip[1] or x.min() < clip[0] or x.max() > clip[1]:
        raise GateInputError(f"data range [{x.min():g}, {x.max():g}] lies outside the policy clip {clip}")
    indices = sample_indices(len(x), config.samples, config.seed)
    xs = x[indices]
    device_state = next(model.parameters()).device if is_torch_module(model) else None
    if device_state is not None:
        model.to(torch_device())
    try:
        probabilities = predict_proba(model, xs)
        if not np.isfinite(probabilities).all():
            raise ArithmeticError("the model returned NaN or infinite outputs on clean inputs")
        ys = label_indices(model, y)[indices]
        entries, findings = _certify(model, xs, ys, config, clip, probabilities.shape[1])
    except TimeoutError as exc:
        raise ToolError(f"{GATE}: {exc} (policy max_seconds {config.max_seconds:g})") from None
    except ArithmeticError as exc:
        raise GateInputError(f"{GATE}: {exc}") from None
    finally:
        if device_state is not None:
            model.to(device_state)
    return model_result(
        GATE, model_uri=model_uri, model_digest=model_digest, policy_digest=policy_digest,
        tool=tool_info("torch" if device_state is not None else "scipy"), started_at=started,
        metrics={"clean_accuracy": round(float((probabilities.argmax(1) == ys).mean()), 4),
                 "samples": len(indices), "sample_digest": indices_digest(indices), "seed": config.seed,
                 "clip": list(clip), "device": str(torch_device()) if device_state is not None else "cpu",
                 **entries},
        thresholds={norm: {f"r{r.radius:g}": r.min_accuracy for r in spec.radii}
                    for norm, spec in (("l2", config.l2), ("linf", config.linf)) if spec is not None},
        findings=findings, artifacts=_plot(entries, out_dir),
    )
