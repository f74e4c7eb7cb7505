"""``model.certification`` on real trained models: randomized smoothing against ART's, interval bounds as boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from scipy.stats import binom
from sklearn.linear_model import LogisticRegression
from torch import nn

from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.results import Status
from mlgate.gates.model.certification import check_certification
from mlgate.gates.model.interval_bounds import UnboundableLayerError, interval_bounds
from mlgate.gates.model.policies import CertificationPolicy
from mlgate.gates.model.smoothing import ABSTAIN, certify, clopper_pearson_interval, clopper_pearson_lower
from tests.fixtures.models import DigitsCNN, digits, digits_cnn, train

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def cnn():
    return digits_cnn()


@pytest.fixture(scope="module")
def images():
    return digits(images=True)


def policy(**sections) -> CertificationPolicy:
    return CertificationPolicy(samples=60, seed=3, **sections)


def smoothing(sigma: float, radius: float, min_accuracy: float, n: int = 500) -> dict:
    return {"sigma": sigma, "n0": 50, "n": n, "radii": [{"radius": radius, "min_accuracy": min_accuracy}]}


# --- Clopper–Pearson -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (5, 10), (9, 10), (10, 10), (980, 1000), (100, 100)],
                         ids=lambda v: str(v))
@pytest.mark.parametrize("alpha", [0.001, 0.05])
def test_clopper_pearson_lower_bound_is_the_exact_one_sided_binomial_bound(k, n, alpha):
    bound = clopper_pearson_lower(k, n, alpha)
    assert 0 <= bound <= k / n
    if k:  # at the bound, seeing k or more successes has probability exactly alpha
        assert binom.sf(k - 1, n, bound) == pytest.approx(alpha, rel=1e-6)
    else:
        assert bound == 0


def test_clopper_pearson_matches_statsmodels_as_art_calls_it():
    from statsmodels.stats.proportion import proportion_confint

    for k, n in [(3, 17), (500, 1000), (99990, 100000)]:
        assert clopper_pearson_lower(k, n, 0.001) == pytest.approx(
            proportion_confint(k, n, alpha=0.002, method="beta")[0], rel=1e-9)
        assert clopper_pearson_interval(k, n) == pytest.approx(proportion_confint(k, n, alpha=0.05, method="beta"))


def test_clopper_pearson_lower_bound_covers_at_the_stated_rate():
    """Over many binomial draws the bound exceeds the true p at most alpha of the time (it is conservative)."""
    rng = np.random.default_rng(0)
    p, n, alpha = 0.7, 200, 0.05
    misses = sum(clopper_pearson_lower(int(k), n, alpha) > p for k in rng.binomial(n, p, 2000))
    assert misses / 2000 <= alpha


@pytest.mark.parametrize(("k", "n"), [(-1, 10), (11, 10), (0, 0)])
def test_clopper_pearson_refuses_impossible_counts(k, n):
    with pytest.raises(ValueError, match="successes"):
        clopper_pearson_lower(k, n, 0.05)


# --- randomized smoothing --------------------------------------------------------------------------------------

def test_smoothing_agrees_with_art_within_monte_carlo_error(cnn, images):
    """The same model and samples through ART's RandomizedSmoothing.certify: certified accuracies agree within
    what two independent Monte-Carlo estimates can differ by, and the radii of samples both certify agree."""
    from art.estimators.certification.randomized_smoothing import PyTorchRandomizedSmoothing

    _, x_test, _, y_test = images
    x, y = x_test[:60], y_test[:60]
    sigma, n = 0.25, 500
    np.random.seed(3)  # ART draws its noise from numpy's global generator
    art = PyTorchRandomizedSmoothing(cnn, loss=nn.CrossEntropyLoss(), input_shape=(1, 8, 8), nb_classes=10,
                                     sample_size=50, scale=sigma, alpha=0.001, device_type="cpu")
    art_pred, art_radius = art.certify(x, n=n, batch_size=500)
    ours = certify(cnn, x, sigma=sigma, n0=50, n=n, alpha=0.001, n_classes=10, seed=3)
    for radius in (0.0, 0.25, 0.5):
        art_accuracy = ((art_pred == y) & (art_radius >= radius)).mean()
        our_accuracy = ours.certified_accuracy(y, radius)[0] / len(y)
        assert abs(art_accuracy - our_accuracy) <= 3 * math.sqrt(0.25 * 2 / len(y)), radius
    both = (art_pred == ours.prediction) & (art_pred != ABSTAIN)
    assert both.sum() >= 0.8 * len(y)
    # one radius estimate has Monte-Carlo spread of about σ·φ(Φ⁻¹(p))⁻¹·sqrt(p(1-p)/n); 0.1 is generous at n 500
    assert np.abs(art_radius[both] - ours.radius[both]).max() < 0.1


def test_smoothing_is_reproducible_with_the_seed_and_abstains_honestly(cnn, images):
    _, x_test, _, _ = images
    runs = [certify(cnn, x_test[:20], sigma=0.5, n0=20, n=100, alpha=0.001, n_classes=10, seed=s) for s in (1, 1, 2)]
    assert np.array_equal(runs[0].radius, runs[1].radius) and np.array_equal(runs[0].prediction, runs[1].prediction)
    assert not np.array_equal(runs[0].p_lower, runs[2].p_lower)
    abstained = runs[0].prediction == ABSTAIN
    assert (runs[0].radius[abstained] == 0).all() and (runs[0].p_lower[abstained] <= 0.5).all()
    # n = 100 at α 0.001 caps p_A below 1, so no radius can exceed σ·Φ⁻¹(0.001^(1/100))
    assert runs[0].radius.max() <= 0.5 * 2.33


@pytest.mark.parametrize(("radius", "min_accuracy", "expected"),
                         [(0.1, 0.6, Status.PASSED), (0.1, 0.99, Status.BLOCKED), (1.5, 0.6, Status.BLOCKED)],
                         ids=["reachable-passes", "threshold-too-high-blocks", "radius-too-large-blocks"])
def test_l2_gate_on_a_trained_cnn(cnn, images, tmp_path, radius, min_accuracy, expected):
    _, x_test, _, y_test = images
    result = check_certification(cnn, x_test, y_test, policy(l2=smoothing(0.25, radius, min_accuracy)), "sha256:p",
                                 model_digest="sha256:m", out_dir=tmp_path)
    assert result.status is expected, result.metrics
    l2 = result.metrics["l2"]
    row = l2["radii"][f"r{radius:g}"]
    low, high = row["certified_accuracy_ci95"]
    # a certified-correct sample is a correct one, so the estimate is at most the smoothed accuracy; its interval
    # is about the population and may reach past that estimate (it did, 0.892 > 0.883, on a fresh install)
    assert low <= row["certified_accuracy"] <= min(high, l2["smoothed_accuracy"] + 1e-9)
    assert (l2["sigma"], l2["n"], l2["alpha"], l2["confidence"]) == (0.25, 500, 0.001, 0.999)
    assert result.metrics["samples"] == 60 and result.metrics["sample_digest"].startswith("sha256:")
    assert result.metrics["clean_accuracy"] > 0.9
    assert (tmp_path / "certified_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    if expected is Status.BLOCKED:
        assert [f.location for f in result.findings] == [f"L2_r{radius:g}"]


def test_l2_gate_on_a_scikit_learn_model():
    x_train, x_test, y_train, y_test = digits()
    model = LogisticRegression(max_iter=2000).fit(x_train, y_train)
    result = check_certification(model, x_test, y_test, policy(l2=smoothing(0.25, 0.1, 0.5, n=200)), "p",
                                 model_digest="sha256:m")
    assert result.status is Status.PASSED and result.metrics["device"] == "cpu"


def test_the_same_seed_reproduces_the_evidence(cnn, images):
    _, x_test, _, y_test = images
    config = policy(l2=smoothing(0.25, 0.25, 0.0, n=200))
    first, second = (check_certification(cnn, x_test, y_test, config, "p", model_digest="m").metrics for _ in "ab")
    assert first["sample_digest"] == second["sample_digest"] and first["l2"]["radii"] == second["l2"]["radii"]


# --- interval bounds -------------------------------------------------------------------------------------------

class Mixed(nn.Module):
    """Every bound rule at once, with a skip connection the module list alone would not reveal."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, padding_mode="reflect"), nn.BatchNorm2d(4),
                                  nn.LeakyReLU(0.1), nn.MaxPool2d(2), nn.AvgPool2d(1))
        self.fc = nn.Linear(64, 64)
        self.head = nn.Sequential(nn.BatchNorm1d(64), nn.Tanh(), nn.Dropout(0.5), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.flatten(self.conv(x), 1)
        return self.head(torch.relu(self.fc(h)) + h - 0.5 * h)


@pytest.mark.parametrize("eps", [0.0, 0.01, 0.1, 0.5])
@pytest.mark.parametrize("network", ["digits-cnn", "mixed"])
def test_interval_bounds_contain_the_outputs_of_every_sampled_input_in_the_box(cnn, images, network, eps):
    model = cnn if network == "digits-cnn" else Mixed()
    if network == "mixed":  # non-trivial running statistics, then frozen
        model.train()(torch.rand(64, 1, 8, 8))
    model.eval()
    _, x_test, _, _ = images
    x = torch.as_tensor(x_test[:8])
    lower, upper = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    with torch.no_grad():
        box = interval_bounds(model, lower, upper)
        generator = torch.Generator().manual_seed(0)
        for _ in range(200):
            corners = torch.rand(x.shape, generator=generator) < 0.5  # box corners: where ReLU bounds are tightest
            uniform = torch.rand(x.shape, generator=generator)
            point = lower + (upper - lower) * torch.where(torch.rand(()) < 0.5, corners.float(), uniform)
            out = model(point).double()
            assert (box.lower <= out + 1e-5).all() and (out <= box.upper + 1e-5).all()
    assert (box.upper - box.lower).min() >= 0
    if eps == 0:
        assert torch.allclose(box.lower, box.upper, atol=1e-9)


def test_interval_bounds_are_exact_for_one_linear_layer():
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    lower, upper = torch.zeros(1, 3), torch.ones(1, 3)
    box = interval_bounds(nn.Sequential(layer), lower, upper)
    w, b = layer.weight.detach().double(), layer.bias.detach().double()
    assert torch.allclose(box.lower[0], b + w.clamp(max=0).sum(1))
    assert torch.allclose(box.upper[0], b + w.clamp(min=0).sum(1))


class WithLayerNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.norm = nn.Linear(64, 10), nn.LayerNorm(10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.fc(x.flatten(1)))


class Squares(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc((x * x).flatten(1))


class Branches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) if x.sum() > 0 else -self.fc(x.flatten(1))


@pytest.mark.parametrize(("network", "named"), [
    (WithLayerNorm(), r"layer 'norm' \(torch.nn.modules.normalization.LayerNorm\)"),
    (Squares(), r"multiplication by anything but a Python number"),
    (Branches(), r"cannot trace Branches with torch.fx"),
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Softmax(dim=1)),
     r"layer '2' \(torch.nn.modules.activation.Softmax\)"),
], ids=["layernorm", "product-of-inputs", "data-dependent-branch", "softmax"])
def test_a_network_with_a_layer_it_cannot_bound_is_refused_naming_it(images, network, named):
    _, x_test, _, y_test = images
    config = policy(linf={"radii": [{"radius": 0.01, "min_accuracy": 0.0}]})
    with pytest.raises(UnboundableLayerError, match=named):
        check_certification(network, x_test, y_test, config, "p", model_digest="sha256:m")


def ibp_trained_mlp(x: np.ndarray, y: np.ndarray, eps: float) -> nn.Module:
    """A small MLP trained on the IBP worst case (Gowal et al.), which makes L∞ certificates non-trivial."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    train(model, x, y, epochs=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    for epoch in range(30):
        ramp = eps * min(1.0, (epoch + 1) / 15)
        for batch in torch.randperm(len(xt)).split(64):
            xb, yb = xt[batch], yt[batch]
            box = interval_bounds(model, (xb - ramp).clamp(0, 1), (xb + ramp).clamp(0, 1), dtype=torch.float32)
            worst = torch.where(nn.functional.one_hot(yb, 10).bool(), box.lower, box.upper)
            loss = 0.5 * nn.functional.cross_entropy(model(xb), yb) + 0.5 * nn.functional.cross_entropy(worst, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def certified_mlp(images):
    x_train, _, y_train, _ = images
    return ibp_trained_mlp(x_train, y_train, 0.05)


@pytest.mark.parametrize(("radius", "min_accuracy", "expected"),
                         [(0.02, 0.5, Status.PASSED), (0.02, 0.99, Status.BLOCKED), (0.3, 0.5, Status.BLOCKED)],
                         ids=["reachable-passes", "threshold-too-high-blocks", "radius-too-large-blocks"])
def test_linf_gate_on_an_ibp_trained_network(certified_mlp, images, radius, min_accuracy, expected):
    from mlgate.gates.model.torch_attacks import attack

    _, x_test, _, y_test = images
    config = policy(linf={"radii": [{"radius": radius, "min_accuracy": min_accuracy}]})
    result = check_certification(certified_mlp, x_test, y_test, config, "p", model_digest="sha256:m")
    assert result.status is expected, result.metrics
    row = result.metrics["linf"]["radii"][f"r{radius:g}"]
    # a certificate is a lower bound: PGD can never push robust accuracy below it
    indices = np.sort(np.random.default_rng(3).permutation(len(x_test))[:60])
    pgd = attack(certified_mlp, x_test[indices], y_test[indices], eps=radius, eps_step=radius / 4, steps=20,
                 norm=np.inf, clip=(0.0, 1.0))
    assert row["certified_accuracy"] <= ((pgd.clean_pred == y_test[indices]) & (pgd.adv_pred == y_test[indices])).mean()


def test_an_undefended_cnn_certifies_little_at_linf(cnn, images):
    _, x_test, _, y_test = images
    config = policy(linf={"radii": [{"radius": 0.001, "min_accuracy": 0.5}, {"radius": 0.03, "min_accuracy": 0.5}]})
    result = check_certification(cnn, x_test, y_test, config, "p", model_digest="sha256:m")
    rows = result.metrics["linf"]["radii"]
    assert rows["r0.001"]["certified_accuracy"] > 0.5 > rows["r0.03"]["certified_accuracy"]
    assert result.status is Status.BLOCKED and [f.location for f in result.findings] == ["L∞_r0.03"]


def test_a_torch_export_graph_is_refused_for_linf(images):
    """Its root carries torch.export's input-check hooks, refused before the bare parameter would be."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).eval()
    graph = torch.export.export(model, (torch.rand(2, 1, 8, 8),),
                                dynamic_shapes=({0: torch.export.Dim("batch")},)).module()
    _, x_test, _, y_test = images
    with pytest.raises(UnboundableLayerError, match=r"the network \(GraphModule.*\) has forward hooks"):
        check_certification(graph, x_test, y_test, policy(linf={"radii": [{"radius": 0.01, "min_accuracy": 0}]}),
                            "p", model_digest="sha256:m")


def test_linf_needs_a_torch_network():
    x_train, x_test, y_train, y_test = digits()
    model = LogisticRegression(max_iter=500).fit(x_train, y_train)
    with pytest.raises(GateInputError, match="need a PyTorch nn.Module"):
        check_certification(model, x_test, y_test, policy(linf={"radii": [{"radius": 0.01, "min_accuracy": 0}]}),
                            "p", model_digest="sha256:m")


# --- fail closed -----------------------------------------------------------------------------------------------

class NaNAfterNoise(DigitsCNN):
    """Finite on the clean data, NaN as soon as Gaussian noise pushes a pixel below zero."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + torch.where(x.amin(dim=(1, 2, 3), keepdim=True) < 0, torch.nan, 0.0)[:, :, 0, 0]


class AlwaysNaN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * math.nan


@pytest.mark.parametrize("section", ["l2", "linf"])
def test_nan_outputs_fail_closed(images, section):
    _, x_test, _, y_test = images
    config = policy(**({"l2": smoothing(0.25, 0.1, 0.0, n=50)} if section == "l2" else
                       {"linf": {"radii": [{"radius": 0.01, "min_accuracy": 0.0}]}}))
    with pytest.raises(GateInputError, match="NaN or infinite outputs on clean inputs"):
        check_certification(AlwaysNaN(), x_test, y_test, config, "p", model_digest="sha256:m")


def test_nan_only_under_noise_fails_closed(images):
    _, x_test, _, y_test = images
    with pytest.raises(GateInputError, match="NaN or infinite outputs on noisy inputs"):
        check_certification(NaNAfterNoise(), x_test, y_test, policy(l2=smoothing(0.25, 0.1, 0.0, n=50)), "p",
                            model_digest="sha256:m")


def test_a_certification_over_its_time_budget_fails_closed(cnn, images):
    _, x_test, _, y_test = images
    config = CertificationPolicy(l2=smoothing(0.25, 0.1, 0.0, n=100_000), samples=60, max_seconds=0.5)
    with pytest.raises(ToolError, match=r"randomized smoothing timed out after 0.5 s"):
        check_certification(cnn, x_test, y_test, config, "p", model_digest="sha256:m")


class FrozenTrainMode(nn.Sequential):
    """Ignores ``eval()``: its batch norm normalises by the batch, the bound rule by the running statistics."""

    def train(self, mode: bool = True):
        return self


def test_bounds_that_miss_the_models_own_output_fail_closed(images):
    """The trace sees an eval-mode BatchNorm, the model computes batch statistics: the bounds miss its output."""
    _, x_test, _, y_test = images
    model = FrozenTrainMode(nn.Flatten(), nn.Linear(64, 10), nn.BatchNorm1d(10))
    model[2].running_mean.fill_(50.0)
    with pytest.raises(ToolError, match="do not contain the model's own output"):
        check_certification(model, x_test, y_test, policy(linf={"radii": [{"radius": 0.0, "min_accuracy": 0}]}), "p",
                            model_digest="sha256:m")


@pytest.mark.parametrize(("section", "message"), [
    ({}, "name at least one of 'l2'"),
    ({"l2": {"sigma": 0.0, "radii": [{"radius": 0.1, "min_accuracy": 0.5}]}}, "greater than 0"),
    ({"l2": {"sigma": 0.25, "radii": []}}, "at least 1 item"),
    ({"linf": {"radii": [{"radius": 0.1, "min_accuracy": 1.5}]}}, "less than or equal to 1"),
    ({"linf": {"radii": [{"radius": 0.1, "min_accuracy": 0.5}]}, "method": "crown"}, "Extra inputs"),
], ids=["no-norm", "zero-sigma", "no-radius", "accuracy-above-one", "unknown-key"])
def test_policy_errors_name_the_problem(section, message):
    with pytest.raises(ValidationError, match=message):
        CertificationPolicy(**section)
