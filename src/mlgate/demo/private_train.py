"""The demo's private model: a small torch MLP on the loans' numeric features, for DP-SGD training.

The gate runs the loop (``TrainingSet``, ADR 0010), so the features are prepared here: PII columns
dropped, the numeric features standardised with the training split's mean and spread, the same split
as ``mlgate.demo.train`` (so the validation gates see rows the model never trained on).
"""

from __future__ import annotations

from typing import Any

from mlgate.demo.dataset import TARGET

NUMERIC = ("age", "annual_income", "loan_amount", "term_months", "credit_score", "employment_years",
           "debt_to_income")


def _split(data_path: str, seed: int):
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(data_path)
    x = frame[list(NUMERIC)].to_numpy(dtype=np.float32)
    x_train, x_test, y_train, y_test = train_test_split(x, frame[TARGET].to_numpy(), test_size=0.25,
                                                        random_state=seed, stratify=frame[TARGET])
    mean, spread = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    return (x_train - mean) / spread, (x_test - mean) / spread, y_train, y_test


def train_loan_mlp(data_path: str, params: dict[str, Any], seed: int):
    """A ``TrainingSet``: an unfitted two-layer MLP and the standardised training rows."""
    import torch
    from sklearn.metrics import roc_auc_score

    from mlgate.gates.model.fitting import TrainingSet
    from mlgate.gates.model.model_eval import predict_proba

    x_train, x_test, y_train, y_test = _split(data_path, seed)
    torch.manual_seed(seed)
    hidden = int(params.get("hidden", 32))
    model = torch.nn.Sequential(torch.nn.Linear(len(NUMERIC), hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))

    def evaluate(fitted) -> dict[str, float]:
        scores = predict_proba(fitted, x_test)[:, 1]
        return {"accuracy": float(((scores > 0.5) == y_test).mean()), "roc_auc": float(roc_auc_score(y_test, scores))}

    return TrainingSet(model, x_train, y_train, epochs=int(params.get("epochs", 10)),
                       batch_size=int(params.get("batch_size", 128)), learning_rate=float(params.get("lr", 1e-2)),
                       evaluate=evaluate)


def validation_data(data_path: str, seed: int):
    from mlgate.gates.model.model_validation import ValidationData

    x_train, x_test, y_train, y_test = _split(data_path, seed)
    return ValidationData(x_train, y_train, x_test, y_test, feature_names=list(NUMERIC))
