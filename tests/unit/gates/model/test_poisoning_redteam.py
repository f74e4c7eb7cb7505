"""Red team (session 5) on ``model.poisoning``: the model author picks the space the detector looks in.

Unless the policy names a layer, the gate reads the input of the *last registered* ``nn.Linear``. An author
(A2) registers a decoy ``nn.Linear`` after the real head, fed something label-free (here zeros, as well random
noise or a constant), and adds its zero output to the logits: predictions and the backdoor are unchanged, and
every training row sits at the same point of the inspected space. Not fixed this session: strict xfail until
the gate inspects every linear layer's input (or requires the signed policy to name the layer).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mlgate.core.results import Status
from mlgate.gates.model.poisoning import check_poisoning
from mlgate.gates.model.policies import PoisoningPolicy
from tests.fixtures.models import DigitsCNN, add_trigger, backdoored_digits, digits, train

pytestmark = pytest.mark.unit
HELD_OUT = 0.35


class DecoyHead(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.decoy = nn.Linear(1, 10)
        nn.init.zeros_(self.decoy.weight)
        nn.init.zeros_(self.decoy.bias)

    def forward(self, x):
        return self.net(x) + self.decoy(x.new_zeros(len(x), 1))


@pytest.mark.xfail(strict=True, reason="redteam5 finding P1: the inspected layer is the author's choice")
def test_a_decoy_last_linear_hides_a_working_backdoor():
    x, y, _ = backdoored_digits(rate=0.05, target=0, test_size=HELD_OUT)
    _, x_ref, _, y_ref = digits(images=True, test_size=HELD_OUT)
    bare = train(DigitsCNN(0), x, y, seed=0)
    assert check_poisoning(bare, x, y, x_ref, y_ref, PoisoningPolicy(), "p",
                           model_digest="sha256:m").status is Status.BLOCKED  # the bare network is caught
    model = DecoyHead(bare).eval()
    with torch.no_grad():
        hijacked = model(torch.as_tensor(add_trigger(x_ref[y_ref != 0]))).argmax(1).numpy() == 0
    assert hijacked.mean() >= 0.6  # a working backdoor (ART's bar)
    result = check_poisoning(model, x, y, x_ref, y_ref, PoisoningPolicy(), "p", model_digest="sha256:m")
    assert result.status is not Status.PASSED, result.metrics
