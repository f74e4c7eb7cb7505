"""Red team (session 5) on ``model.certification``'s interval bounds: networks whose bounds the rules get wrong.

Each attack is a network an author (A2) could ship, the gate certifying it at L∞ radius 0.1 while a simple
perturbation inside that radius flips most predictions. The gate must refuse (fail closed) or block, never pass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.model.certification import check_certification
from mlgate.gates.model.policies import CertificationPolicy

pytestmark = pytest.mark.unit

RADIUS = 0.1


def _data(margin: float = 1 / 16) -> tuple[np.ndarray, np.ndarray]:
    """Two features on a 1/16 grid; class 0 when x0 - x1 > 0, ``|x0 - x1| == margin`` (default: less than
    2·RADIUS, so no sound certificate exists at RADIUS)."""
    rng = np.random.default_rng(0)
    x = rng.integers(2, 15, size=(2000, 2)).astype(np.float32) / 16
    gap = x[:, 0] - x[:, 1]
    keep = np.abs(gap) == margin
    return x[keep], (gap[keep] < 0).astype(np.int64)


def _gate(model: nn.Module, x: np.ndarray, y: np.ndarray):
    config = CertificationPolicy(samples=len(x), seed=0, clip=(0.0, 1.0),
                                 linf={"radii": [{"radius": RADIUS, "min_accuracy": 0.9}]})
    return check_certification(model, x, y, config, "p", model_digest="sha256:m")


def _flipped(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Share of samples a perturbation inside the radius (push x0 - x1 across 0) misclassifies."""
    step = np.where(y[:, None] == 0, [-RADIUS, RADIUS], [RADIUS, -RADIUS]).astype(np.float32) * 0.9
    with torch.no_grad():
        clean = model(torch.as_tensor(x)).argmax(1).numpy()
        adv = model(torch.as_tensor(np.clip(x + step, 0, 1))).argmax(1).numpy()
    return float(((clean == y) & (adv != y)).mean())


class NegatedBranch(nn.Module):
    """logit0 = a(x) + b(-x) = x0 - x1, logit1 = 0; the negation is an AvgPool2d with divisor_override=-1 (or an
    ELU with negative alpha), which the bound rules treat as order-preserving: the box comes out inverted and its
    negative radius cancels the true one."""

    def __init__(self, negate: nn.Module) -> None:
        super().__init__()
        self.negate, self.a, self.b = negate, nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.a.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
            self.b.weight.copy_(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))

    def forward(self, x):
        return self.a(x) + self.b(self.negate(x.view(-1, 1, 1, 2)).view(-1, 2))


def test_an_order_reversing_pool_does_not_certify_a_non_robust_network():
    x, y = _data()
    model = NegatedBranch(nn.AvgPool2d(1, divisor_override=-1)).eval()
    assert _flipped(model, x, y) > 0.9  # the network is not robust at the radius
    with pytest.raises(GateInputError, match="order"):
        _gate(model, x, y)


class EluBranch(nn.Module):
    """ELU(alpha=-1) is decreasing below 0: on x - 1 ∈ [-1, 0) it maps the box's ends to an inverted box."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = NegatedBranch(nn.Identity())
        self.elu = nn.ELU(alpha=-1.0)

    def forward(self, x):
        return self.inner(self.elu(x - 1.0))


def test_a_non_monotone_elu_is_refused():
    x, y = _data()
    model = EluBranch().eval()
    with pytest.raises(GateInputError, match="ELU"):
        _gate(model, x, y)


def _grid_hook(module, inputs, output):
    """Zero on the data's 1/16 grid (so the bounds still hold the clean output), off it a large push towards the
    losing class."""
    frac = (inputs[0] * 16 - (inputs[0] * 16).round()).abs().sum(1, keepdim=True)
    return output + 1000 * frac * (output.flip(1) - output).sign()


def _grid_model() -> nn.Module:
    """A linear layer honestly certified at RADIUS on data with margin 1/2 (it needs margin > 2·RADIUS)."""
    model = nn.Sequential(nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]) * 100)
        model[0].bias.zero_()
    return model.eval()


def test_a_forward_hook_on_a_bounded_layer_is_refused():
    x, y = _data(0.5)
    model = _grid_model()
    model[0].register_forward_hook(_grid_hook)
    assert _flipped(model, x, y) > 0.9
    with pytest.raises(GateInputError, match="hook"):
        _gate(model, x, y)


def test_a_layer_whose_forward_was_replaced_is_refused_even_when_it_agrees_on_the_data():
    x, y = _data(0.5)
    model = _grid_model()
    linear = model[0]
    linear.forward = lambda t: _grid_hook(linear, (t,), nn.functional.linear(t, linear.weight, linear.bias))
    assert _flipped(model, x, y) > 0.9
    with pytest.raises(GateInputError, match="forward"):
        _gate(model, x, y)


@pytest.mark.parametrize(("margin", "expected"), [(0.5, Status.PASSED), (1 / 16, Status.BLOCKED)])
def test_the_plain_network_is_judged_on_its_margin(margin, expected):
    x, y = _data(margin)
    assert _gate(_grid_model(), x, y).status is expected
