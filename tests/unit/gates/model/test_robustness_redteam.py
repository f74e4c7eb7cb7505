"""Red team (session 5) on ``model.robustness``: a defence hidden inside ``forward`` under the shipped policy.

The author (A2) quantises the input inside the network (``round``, zero gradient almost everywhere) instead of
declaring feature squeezing in ``input_defence.json``. FGSM and PGD then take no step, robust accuracy equals
clean accuracy, and the default policy's section then ran no gradient-masking checks: it passed a model a
transfer attack breaks. Fixed twice: an always-on zero-gradient check, and the masking checks in the default policy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mlgate.core.results import Status
from mlgate.gates.model.policies import RobustnessPolicy
from mlgate.gates.model.robustness import check_robustness
from mlgate.gates.model.torch_attacks import examples
from tests.fixtures.models import digits, digits_cnn

pytestmark = pytest.mark.unit


class HiddenSqueeze(nn.Module):
    """The digits CNN behind an undeclared 4-bit squeeze: identical on the data (values k/16), no gradient."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(torch.round(x * 16) / 16)


def _default_section() -> RobustnessPolicy:
    from pathlib import Path

    import yaml

    shipped = Path(__file__).parents[4] / "policies" / "default.yaml"
    section = yaml.safe_load(shipped.read_text())["gates"]["model.robustness"]
    return RobustnessPolicy.model_validate({**section, "curve_factors": ()})


def test_an_undeclared_zero_gradient_defence_does_not_pass_the_shipped_policy():
    x_train, x_test, y_train, y_test = digits(images=True)
    base = digits_cnn()
    model = HiddenSqueeze(base).eval()
    policy = _default_section()
    # the model is not robust: PGD crafted on the bare CNN (the hidden squeeze's BPDA) transfers
    xs, ys = x_test[:200], y_test[:200]
    adv = examples(base.eval(), xs, ys, eps=0.1, eps_step=0.025, steps=20, norm=np.inf, clip=(0.0, 1.0), seed=0)
    with torch.no_grad():
        robust = (model(torch.as_tensor(adv)).argmax(1).numpy() == ys).mean()
    assert robust < 0.3
    result = check_robustness(model, x_test, y_test, policy, "sha256:p", model_digest="sha256:m",
                              x_train=x_train, y_train=y_train)
    assert result.status is Status.BLOCKED, result.metrics["attacks"]
    assert "model.robustness.masking.zero_gradient" in [f.id for f in result.findings]
    assert result.metrics["zero_gradient_share"] == 1.0


def test_the_bare_network_has_a_gradient_and_no_such_finding():
    x_train, x_test, y_train, y_test = digits(images=True)
    result = check_robustness(digits_cnn().eval(), x_test, y_test, _default_section(), "sha256:p",
                              model_digest="sha256:m", x_train=x_train, y_train=y_train)
    assert result.metrics["zero_gradient_share"] < 0.05
    assert not [f for f in result.findings if f.id.endswith("zero_gradient")]
