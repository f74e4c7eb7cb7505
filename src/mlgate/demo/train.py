"""The demo's training code: drops the PII columns, one-hot encodes, fits a logistic regression."""

from __future__ import annotations

from typing import Any

from mlgate.demo.dataset import FEATURES, PII_COLUMNS, TARGET


def train_loan_model(data_path: str, params: dict[str, Any], seed: int):
    """Returns ``(model, metrics)``; PII columns never reach the model."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.read_csv(data_path).drop(columns=list(PII_COLUMNS))
    features = frame[list(FEATURES)]
    categorical = [c for c in FEATURES if features[c].dtype == object or str(features[c].dtype) == "str"]
    numeric = [c for c in FEATURES if c not in categorical]
    x_train, x_test, y_train, y_test = train_test_split(features, frame[TARGET], test_size=0.25,
                                                        random_state=seed, stratify=frame[TARGET])
    model = Pipeline([
        ("prepare", ColumnTransformer([("numeric", StandardScaler(), numeric),
                                       ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical)])),
        ("classify", LogisticRegression(C=float(params.get("C", 1.0)), max_iter=int(params.get("max_iter", 500)),
                                        random_state=seed)),
    ]).fit(x_train, y_train)
    scores = model.predict_proba(x_test)[:, 1]
    return model, {"accuracy": float(accuracy_score(y_test, scores > 0.5)),
                   "roc_auc": float(roc_auc_score(y_test, scores))}


def validation_data(data_path: str, seed: int):
    """The same split ``train_loan_model`` made, for the model validation gates; the applicant's age band
    is the sensitive attribute the fairness gate compares."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    from mlgate.gates.model.model_validation import ValidationData

    frame = pd.read_csv(data_path).drop(columns=list(PII_COLUMNS))
    x_train, x_test, y_train, y_test = train_test_split(frame[list(FEATURES)], frame[TARGET], test_size=0.25,
                                                        random_state=seed, stratify=frame[TARGET])
    age_band = pd.cut(x_test["age"], bins=[0, 45, 200], labels=["<45", "45+"]).astype(str)
    return ValidationData(x_train, y_train.to_numpy(), x_test, y_test.to_numpy(),
                          sensitive_test=pd.DataFrame({"age_band": age_band.to_numpy()}))
