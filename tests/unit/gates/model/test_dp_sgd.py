from __future__ import annotations

import pytest

from mlgate.core.errors import GateInputError

pytestmark = pytest.mark.unit

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from mlgate.gates.model.dp_sgd import make_private  # noqa: E402


def tiny_setup(rows: int = 512):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(rows, 8, generator=generator)
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(features, labels), batch_size=64)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    return model, torch.optim.SGD(model.parameters(), lr=2.0), loader, features, labels


def train_one_epoch(private) -> None:
    for batch, target in private.data_loader:
        private.optimizer.zero_grad()
        torch.nn.functional.cross_entropy(private.model(batch), target).backward()
        private.optimizer.step()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_one_epoch_spends_at_most_the_target_epsilon():
    model, optimizer, loader, features, labels = tiny_setup()
    private = make_private(model, optimizer, loader, target_epsilon=3.0, target_delta=1e-5, epochs=1,
                           max_grad_norm=1.0)
    assert private.epsilon() == 0.0 and private.noise_multiplier > 0
    train_one_epoch(private)
    spent = private.epsilon()
    assert 0.5 < spent <= 3.0 * 1.01
    with torch.no_grad():
        accuracy = (private.model(features).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.75  # a linear rule is still learnt through the noise (0.87–0.92 over 10 seeds)


@pytest.mark.parametrize("kwargs", [
    {"target_epsilon": 0.0}, {"target_delta": 1.0}, {"epochs": 0}, {"max_grad_norm": float("nan")},
], ids=["epsilon-zero", "delta-one", "no-epochs", "nan-norm"])
def test_invalid_targets_are_input_errors(kwargs):
    model, optimizer, loader, _, _ = tiny_setup(64)
    args = {"target_epsilon": 1.0, "target_delta": 1e-5, "epochs": 1, "max_grad_norm": 1.0} | kwargs
    with pytest.raises(GateInputError):
        make_private(model, optimizer, loader, **args)
