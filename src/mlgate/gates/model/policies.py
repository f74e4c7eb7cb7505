"""The policy sections of the model gates, apart from the gates: pydantic and the standard library only.

Validating a policy (every CLI check does, for the policy digest) validates every section it holds;
kept here, that imports no gate and none of numpy, scikit-learn or ART (``core.policy.SECTIONS``).
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class StrictPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_GLOBAL_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"


class ArtifactPolicy(BaseModel):
    """``gates.model.artifact``: exact globals allowed beyond the built-in list (never a module prefix)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    extra_allowed_globals: tuple[str, ...] = Field(
        default=(), description="exact 'module.QualifiedName' pairs, e.g. 'mypkg.models.MyEstimator'")
    allowed_code_digests: tuple[str, ...] = Field(
        default=(), description="'sha256:<hex>' of code files a model may run at load (a pyfunc python_model, "
                                "a code/ directory's files, a .py/.so file)")

    @field_validator("allowed_code_digests")
    @classmethod
    def _sha256(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [d for d in value if not re.fullmatch(r"sha256:[0-9a-f]{64}", d)]
        if bad:
            raise ValueError(f"expected 'sha256:<64 hex digits>', got {bad}")
        return value

    @field_validator("extra_allowed_globals")
    @classmethod
    def _dotted(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [g for g in value if not re.fullmatch(_GLOBAL_PATTERN, g)]
        if bad:
            raise ValueError(f"expected exact 'module.name' globals (no wildcards), got {bad}")
        return value


class AttackSpec(StrictPolicy):
    name: Literal["fgsm", "pgd", "hopskipjump"]
    eps: float = Field(gt=0, description="radius of the perturbation ball, in input units")
    norm: Literal["inf", "2"] = "inf"
    steps: int = Field(default=10, ge=1, description="PGD iterations; HopSkipJump iterations")
    eps_step: float | None = Field(default=None, gt=0, description="PGD step size; default 2.5·ε/steps")
    samples: int = Field(default=200, ge=1)
    random_start: bool = False
    max_queries: int = Field(default=1000, ge=10,
                             description="HopSkipJump: gradient-estimation queries per sample over all steps")
    loss: Literal["ce", "margin"] = Field(default="ce", description="torch: cross-entropy, or the C&W logit "
                                                                    "margin (survives a saturated softmax)")
    restarts: int = Field(default=1, ge=1, description="runs from fresh random starts; worst case per sample")
    bpda: bool = Field(default=False, description="attack a declared input defence through the identity "
                                                  "(BPDA) instead of its own gradient")
    eot_samples: int = Field(default=1, ge=1, description="gradient averaged over this many draws of a "
                                                          "randomized input defence (EOT)")

    @property
    def key(self) -> str:
        adaptive = "".join((f"_{self.loss}" if self.loss != "ce" else "", "_bpda" if self.bpda else "",
                            f"_eot{self.eot_samples}" if self.eot_samples > 1 else "",
                            f"_r{self.restarts}" if self.restarts > 1 else ""))
        return f"{self.name}_l{self.norm}_eps{self.eps:g}{adaptive}"

    @property
    def order(self) -> float:
        return math.inf if self.norm == "inf" else 2.0

    def step_size(self, eps: float) -> float:
        if self.name == "fgsm":
            return eps
        return (self.eps_step or 2.5 * self.eps / self.steps) * eps / self.eps


class MaskingChecks(StrictPolicy):
    """The gradient-masking checks of Carlini et al. 2019 ("On Evaluating Adversarial Robustness"), run on
    each PGD attack of the policy; a model failing one is blocked whatever its robust accuracy."""

    large_eps: float = Field(gt=0, description="ε at which the PGD attack must bring accuracy to about 0")
    max_large_eps_accuracy: float = Field(default=0.05, ge=0, le=1)
    steps_factor: int = Field(default=4, ge=1, description="the stronger attack's steps, in multiples of the "
                                                           "PGD attack's")
    restarts: int = Field(default=5, ge=1, description="the stronger attack's random restarts")
    transfer: bool = Field(default=True, description="transfer PGD from an undefended surrogate trained on the "
                                                     "training rows (a black-box attack)")
    surrogate_epochs: int = Field(default=30, ge=1)
    tolerance: float = Field(default=0.05, ge=0, le=1,
                             description="robust-accuracy points by which a weaker attack may beat a stronger one")


class RobustnessPolicy(StrictPolicy):
    attacks: tuple[AttackSpec, ...] = Field(min_length=1)
    min_robust_accuracy: float = Field(ge=0, le=1)
    max_accuracy_drop: float = Field(ge=0, le=1)
    seed: int = 0
    clip: tuple[float, float] | None = Field(default=None, description="data range; default: the range of x")
    curve_factors: tuple[float, ...] = Field(default=(0.25, 0.5, 1.0, 2.0),
                                             description="ε multiples for the robustness curve; () for none")
    masking_checks: MaskingChecks | None = Field(default=None, description="Carlini et al. 2019 sanity checks")


class TprLimit(StrictPolicy):
    """Block when the attack's true-positive rate at false-positive rate ``fpr`` exceeds ``max_tpr``."""

    fpr: float = Field(gt=0, lt=0.5, description="false-positive rate the threshold is set at, e.g. 0.001")
    max_tpr: float = Field(ge=0, le=1, description="members found at that FPR that still pass; chance is fpr")

    @model_validator(mode="after")
    def _above_chance(self) -> TprLimit:
        if self.max_tpr < self.fpr:
            raise ValueError(f"max_tpr must be at least fpr (chance: a coin finds fpr of the members at that "
                             f"rate); got max_tpr {self.max_tpr} below fpr {self.fpr}, so every model blocks")
        return self


class TorchShadowTraining(StrictPolicy):
    """How shadow copies of a torch module are trained (Adam, cross-entropy): set it to the model's own
    recipe; a weaker recipe than the model's under-states what the shadows can tell apart."""

    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=1e-3, gt=0)


class LiraPolicy(StrictPolicy):
    """LiRA (Carlini et al. 2022) on shadow models of the audited estimator, and its budget (ADR 0035)."""

    shadows: int = Field(default=16, ge=4, description="shadow models trained at least; even (half IN, half OUT)")
    max_shadows: int = Field(default=64, ge=4, description="budget: the most shadow models the audit may train "
                                                           "to put min_false_positives under the lowest fpr")
    max_seconds: float = Field(default=600.0, gt=0, description="budget: wall-clock seconds for the shadow "
                                                                "models; a projected overrun fails closed")
    min_false_positives: int = Field(default=5, ge=1, description="non-member false positives the lowest fpr "
                                                                  "must rest on, pooled over targets")
    limits: tuple[TprLimit, ...] = Field(
        default=(TprLimit(fpr=0.001, max_tpr=0.01), TprLimit(fpr=0.01, max_tpr=0.05)), min_length=1)
    torch: TorchShadowTraining = Field(default_factory=TorchShadowTraining)
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="where torch shadows train")
    seed: int = 0

    @field_validator("shadows", "max_shadows")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError(f"must be even (every row is IN for exactly half of the shadow models); got {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LiraPolicy:
        if self.max_shadows < self.shadows:
            raise ValueError(f"max_shadows ({self.max_shadows}) must be at least shadows ({self.shadows})")
        fprs = [limit.fpr for limit in self.limits]
        if len(set(fprs)) != len(fprs):
            raise ValueError(f"limits name each fpr once; got fprs {fprs}")
        return self


class MembershipPolicy(StrictPolicy):
    """``model.privacy``: ART's black-box and loss attacks as a fast pre-check, then LiRA (``lira``)."""

    max_auc: float = Field(default=0.6, ge=0.5, le=1)
    max_advantage: float = Field(default=0.2, ge=0, le=1)
    attack_model: Literal["rf", "gb", "lr", "dt", "knn"] = "rf"
    samples: int = Field(default=1000, ge=20, description="records drawn per side (members, non-members)")
    seed: int = 0
    lira: LiraPolicy = Field(default_factory=LiraPolicy)


class PoisoningPolicy(StrictPolicy):
    components: int = Field(default=10, ge=2, description="leading directions each label's rows are compared in")
    alpha: float = Field(default=0.01, gt=0, lt=1,
                         description="chance that a clean model is blocked, over every label, detector and cut")
    max_suspicious_fraction: float = Field(default=0.0, ge=0, le=1,
                                           description="share of flagged training records that still passes")
    layer: str | None = Field(default=None, description="torch only: module whose output is compared; default: "
                                                         "the input of the last nn.Linear (penultimate layer)")
    neighbours: int = Field(default=3, ge=1, description="k of the k-th nearest reference record distance")
    tail_quantiles: tuple[float, ...] = Field(
        default=(0.0, 0.01, 0.05), min_length=1,
        description="where the reference tail is cut: 0 counts training records above every reference record")
    min_poison_fraction: float = Field(
        default=0.01, gt=0, lt=1, description="share of the training records, planted in one label, that the "
                                              "reference must be large enough to detect; else the gate blocks")
    power: float = Field(default=0.8, gt=0, lt=1,
                         description="chance of detecting min_poison_fraction the reference must give")

    @field_validator("tail_quantiles")
    @classmethod
    def _quantiles(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        bad = [q for q in value if not 0 <= q < 0.5]
        if bad:
            raise ValueError(f"expected upper-tail shares in [0, 0.5), got {bad}")
        return value


class FairnessPolicy(StrictPolicy):
    sensitive_columns: tuple[str, ...] = Field(min_length=1)
    max_demographic_parity_difference: float = Field(default=0.1, ge=0, le=1)
    max_equalized_odds_difference: float = Field(default=0.1, ge=0, le=1)
    positive_label: int | str = 1
    min_group_size: int = Field(default=30, ge=1)


class ExplainabilityPolicy(StrictPolicy):
    max_feature_share: float = Field(default=0.5, gt=0, le=1,
                                     description="largest share of total importance one feature may carry")
    n_repeats: int = Field(default=5, ge=1)
    samples: int = Field(default=2000, ge=10)
    scoring: str | None = Field(default=None, description="scikit-learn scorer name; default: the model's score")
    seed: int = 0

class DosPolicy(StrictPolicy):
    max_latency_ms: float = Field(default=1000.0, gt=0, description="worst single-row latency allowed")
    max_latency_ratio: float = Field(default=50.0, gt=1, description="worst latency allowed, in medians")
    ratio_floor_ms: float = Field(default=20.0, ge=0, description="a worst case below this never blocks by ratio")
    max_memory_mb: float = Field(default=512.0, gt=0, description="worst peak memory of one prediction")
    samples: int = Field(default=50, ge=5, description="held-out rows timed for the median")
    repeats: int = Field(default=3, ge=1)
    max_string_length: int = Field(default=100_000, ge=16)
    sponge_steps: int = Field(default=40, ge=0)
    report: int = Field(default=5, ge=1, description="worst inputs listed in the evidence")
    seed: int = 0


class CertifiedRadius(StrictPolicy):
    radius: float = Field(ge=0, allow_inf_nan=False, description="L2 or L∞ radius, in input units")
    min_accuracy: float = Field(ge=0, le=1, description="certified accuracy at this radius below which the gate "
                                                         "blocks")


class SmoothingPolicy(StrictPolicy):
    """L2 certificates by randomized smoothing (Cohen et al., 2019)."""

    sigma: float = Field(gt=0, allow_inf_nan=False, description="standard deviation of the Gaussian noise")
    radii: tuple[CertifiedRadius, ...] = Field(min_length=1)
    n0: int = Field(default=100, ge=1, description="noisy draws that select the class")
    n: int = Field(default=10_000, ge=10, description="noisy draws that estimate its probability")
    alpha: float = Field(default=0.001, gt=0, lt=0.5, description="probability that one certificate is wrong")
    batch_size: int = Field(default=1000, ge=1, description="noisy inputs per forward pass")


class IntervalPolicy(StrictPolicy):
    """L∞ certificates by interval bound propagation (exact, no sampling) on small ReLU networks."""

    radii: tuple[CertifiedRadius, ...] = Field(min_length=1)
    batch_size: int = Field(default=256, ge=1, description="samples per propagation")


class CertificationPolicy(StrictPolicy):
    l2: SmoothingPolicy | None = None
    linf: IntervalPolicy | None = None
    samples: int = Field(default=100, ge=1, description="held-out rows certified (one seeded permutation)")
    seed: int = 0
    clip: tuple[float, float] | None = Field(default=None, description="data range the L∞ box is clipped to; "
                                                                       "default: the range of x")
    max_seconds: float = Field(default=1800, gt=0, description="the gate fails (closed) past this budget")

    @model_validator(mode="after")
    def _some_norm(self) -> CertificationPolicy:
        if self.l2 is None and self.linf is None:
            raise ValueError("name at least one of 'l2' (randomized smoothing) or 'linf' (interval bounds)")
        return self
