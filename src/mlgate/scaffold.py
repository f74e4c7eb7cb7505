"""``mlgate init``: a project for the user's own data that promotes through the gates from the first run.

From one CSV (and the name of its label column) it writes: a policy requiring the chosen gates, a GX suite
profiled from a sample of the data, the shipped threat model and compliance map, a manifest pinning the data,
a training module, an Airflow DAG wiring the operators, and a signing key that owns (signs) the policy, so
the signer trusts it (ADR 0013). Columns the PII scan finds PII in are allowed to hold it and kept out of
the model's features. Everything is a starting point to review, which the files say.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlgate.core.errors import GateInputError
from mlgate.core.policy import load_policy
from mlgate.core.shipped import shipped

if TYPE_CHECKING:
    import pandas as pd

DATA_GATES = ("data.integrity", "data.pii", "data.expectations")
DEFAULT_GATES = (*DATA_GATES, "code.static", "model.training", "model.artifact")
ALWAYS = ("data.integrity", "model.training", "model.artifact")  # what a promotable model needs at least
MAX_CATEGORIES = 20

DAG_TEMPLATE = '''"""{model}: train on {data_name} behind mlgate's gates; promote only when every required gate passed.

Written by `mlgate init`: review it, the policy ({policy}) and the suite before relying on them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.sdk import DAG

from mlgate.operators import (
{imports}
)

PROJECT = Path({project!r})
sys.path.insert(0, str(PROJECT / "training"))  # the training module the train task imports
gate_args = {{"policy_path": str(PROJECT / "policies" / "default.yaml")}}
DATA = {data!r}

with DAG(dag_id={dag_id!r}, schedule=None, catchup=False, tags=["mlgate"]) as dag:
{tasks}
'''


@dataclass(frozen=True)
class Scaffold:
    directory: Path
    policy: Path
    suite: Path
    dag: Path
    dag_id: str
    key: Path
    pii_columns: dict[str, list[str]]


def _sample(data: Path, rows: int) -> pd.DataFrame:
    import pandas as pd

    try:
        frame = pd.read_csv(data, nrows=rows)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise GateInputError(f"{data}: cannot read a CSV sample: {type(exc).__name__}") from None
    if frame.empty:
        raise GateInputError(f"{data}: holds no rows to profile")
    return frame


def profile_suite(frame: pd.DataFrame, name: str) -> dict[str, Any]:
    """A GX 1.x suite from a sample: the exact columns, non-null where the sample had no nulls, numeric
    ranges widened by half their width (a sample rarely holds the extremes), small category sets."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    def expect(kind: str, **kwargs: Any) -> dict[str, Any]:
        return {"type": kind, "kwargs": kwargs, "meta": {"profiled_from_sample": True}}

    expectations = [expect("expect_table_columns_to_match_set", column_set=list(frame.columns), exact_match=True),
                    expect("expect_table_row_count_to_be_between", min_value=1)]
    for column in frame.columns:
        values = frame[column]
        if not values.isna().any():
            expectations.append(expect("expect_column_values_to_not_be_null", column=column))
        present = values.dropna()
        if is_numeric_dtype(values) and not is_bool_dtype(values) and len(present):
            low, high = float(present.min()), float(present.max())
            margin = (high - low) / 2
            expectations.append(expect("expect_column_values_to_be_between", column=column,
                                       min_value=low - margin, max_value=high + margin))
        elif 0 < present.nunique() <= MAX_CATEGORIES and present.nunique() < len(present):
            expectations.append(expect("expect_column_values_to_be_in_set", column=column,
                                       value_set=sorted(present.unique().tolist(), key=str)))
    return {"name": name, "expectations": expectations, "meta": {"written_by": "mlgate init"}}


def pii_columns(data: Path) -> dict[str, list[str]]:
    """Column -> the PII types the scan found in it (the policy allows them there; training drops them)."""
    from mlgate.gates.data.pii import PiiPolicy, check_pii

    result = check_pii(data, PiiPolicy(action="report"), "sha256:init")
    found: dict[str, list[str]] = {}
    for pii_type, columns in result.metrics["cells_by_type"].items():
        for column in columns:
            found.setdefault(column, []).append(pii_type)
    return {column: sorted(types) for column, types in sorted(found.items())}


def policy_document(model: str, gates: tuple[str, ...], suite: str, allowed: dict[str, list[str]]) -> str:
    sections: dict[str, Any] = {"data.integrity": {"algorithm": "sha256"}}
    if "data.pii" in gates:
        sections["data.pii"] = {"allowed": allowed, "action": "block"}
    if "data.expectations" in gates:
        sections["data.expectations"] = {"suite": suite, "max_failed_expectations": 0}
    if "code.static" in gates:
        sections["code.static"] = {"min_severity": "medium", "min_confidence": "medium"}
    document = {"version": 1,
                "promotion": {"model_name": model, "alias": "champion", "required_gates": list(gates),
                              "max_evidence_age_hours": 24},
                "gates": sections, "exceptions": []}
    return ("# Written by `mlgate init`: review it. Editing it voids its owner signature (default.yaml.dsse.json):\n"
            "# sign it again with the owner key (mlgate.trust.trusted_policy.sign_policy) or pin its digest\n"
            "# (MLGATE_TRUSTED_POLICY_DIGESTS), or the signer refuses to promote under it (ADR 0013).\n"
            + yaml.safe_dump(document, sort_keys=False))


TRAINING = '''"""Training for {model}, written by `mlgate init`: a scaled, one-hot logistic regression on the features.

Columns the PII scan flagged ({pii}) and the label are not features. Replace the model as you like; the
callable returns (fitted scikit-learn model, metrics).
"""

from __future__ import annotations

FEATURES = {features!r}
TARGET = {target!r}


def train(data_path: str, params: dict, seed: int):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.read_csv(data_path)
    features = frame[FEATURES]
    categorical = [c for c in FEATURES if not pd.api.types.is_numeric_dtype(features[c])]
    numeric = [c for c in FEATURES if c not in categorical]
    x_train, x_test, y_train, y_test = train_test_split(features, frame[TARGET], test_size=0.25, random_state=seed)
    model = Pipeline([
        ("prepare", ColumnTransformer([("numeric", StandardScaler(), numeric),
                                       ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical)])),
        ("classify", LogisticRegression(C=float(params.get("C", 1.0)), max_iter=int(params.get("max_iter", 500)),
                                        random_state=seed)),
    ]).fit(x_train, y_train)
    return model, {{"accuracy": float(model.score(x_test, y_test))}}
'''

TASKS = {
    "data.integrity": ("DataIntegrityGateOperator", 'integrity = DataIntegrityGateOperator(task_id="data_integrity", '
                       'data_path=DATA, manifest_path={manifest!r}, **gate_args)'),
    "data.pii": ("DataPiiGateOperator", 'pii = DataPiiGateOperator(task_id="data_pii", data_path=DATA, **gate_args)'),
    "data.expectations": ("DataExpectationsGateOperator", 'expectations = DataExpectationsGateOperator('
                          'task_id="data_expectations", data_path=DATA, **gate_args)'),
    "code.static": ("CodeStaticGateOperator", 'static = CodeStaticGateOperator(task_id="code_static", '
                    'source_path=str(PROJECT / "training"), **gate_args)'),
    "model.training": ("ModelTrainingGateOperator", 'train = ModelTrainingGateOperator(task_id="train_model", '
                       'training_callable="train_model:train", code_path=str(PROJECT / "training"), data_path=DATA, '
                       'hyperparameters={{"C": 1.0, "max_iter": 500}}, seed=7, **gate_args)'),
    "model.artifact": ("ModelArtifactGateOperator", 'artifact = ModelArtifactGateOperator(task_id="model_artifact", '
                       '**gate_args)'),
}


def dag_document(project: Path, model: str, dag_id: str, data: Path, manifest: Path, gates: tuple[str, ...]) -> str:
    chosen = [g for g in TASKS if g in gates]
    names = [TASKS[g][1].split(" = ")[0] for g in chosen]
    before_training = [n for g, n in zip(chosen, names, strict=True) if g not in ("model.training", "model.artifact")]
    tasks = [TASKS[g][1].format(manifest=str(manifest)) for g in chosen]
    tasks.append('promote = RegistryPromoteGateOperator(task_id="promote_model", **gate_args)')
    tasks.append(f"[{', '.join(before_training)}] >> train >> artifact >> promote")
    imports = sorted({TASKS[g][0] for g in chosen} | {"RegistryPromoteGateOperator"})
    return DAG_TEMPLATE.format(model=model, data_name=data.name, policy="policies/default.yaml",
                               imports="\n".join(f"    {name}," for name in imports), project=str(project),
                               data=str(data), dag_id=dag_id, tasks="\n".join(f"    {t}" for t in tasks))


def init_project(directory: Path, data: Path, target: str, *, model: str | None = None,
                 gates: tuple[str, ...] = DEFAULT_GATES, sample_rows: int = 10_000) -> Scaffold:
    """Write the project (refusing to overwrite one); see the module docstring."""
    from mlgate.gates.data.integrity import build_manifest
    from mlgate.trust.attestation import generate_key, signer_from_file
    from mlgate.trust.trusted_policy import sign_policy

    directory, data = directory.absolute(), data.absolute()
    unknown = [g for g in gates if g not in TASKS]
    if unknown:
        raise GateInputError(f"--gates: init scaffolds {list(TASKS)}; found {unknown}")
    gates = tuple(dict.fromkeys((*gates, *ALWAYS)))
    if (directory / "policies" / "default.yaml").exists():
        raise GateInputError(f"{directory} already holds an mlgate project (policies/default.yaml); init never "
                             "overwrites one")
    frame = _sample(data, sample_rows)
    if target not in frame.columns:
        raise GateInputError(f"--target: {data.name} has no column {target!r}; its columns are {list(frame.columns)}")
    model = model or re.sub(r"[^A-Za-z0-9_-]+", "-", data.stem).strip("-") or "model"
    dag_id = "mlgate_" + re.sub(r"\W+", "_", model)
    pii = pii_columns(data) if "data.pii" in gates else {}
    for sub in ("policies", "expectations", "training", "dags", "data", "keys"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    suite = directory / "expectations" / f"{data.stem}.json"
    suite.write_text(json.dumps(profile_suite(frame, data.stem), indent=2) + "\n")
    policy_path = directory / "policies" / "default.yaml"
    policy_path.write_text(policy_document(model, gates, f"../expectations/{suite.name}", pii))
    for name in ("threat-model.yaml", "compliance.yaml"):
        shutil.copyfile(shipped(f"policies/{name}"), directory / "policies" / name)
    features = [c for c in frame.columns if c != target and c not in pii]
    (directory / "training" / "train_model.py").write_text(TRAINING.format(
        model=model, pii=", ".join(pii) or "none", features=features, target=target))
    manifest = build_manifest(data).save(directory / "data" / f"{data.stem}.manifest.json")
    dag = directory / "dags" / f"{dag_id}.py"
    dag.write_text(dag_document(directory, model, dag_id, data, manifest, gates))
    key = directory / "keys" / "signing.pem"
    if not key.exists():
        generate_key(key)
    sign_policy(load_policy(policy_path), signer_from_file(key))
    return Scaffold(directory, policy_path, suite, dag, dag_id, key, pii)


def next_steps(scaffold: Scaffold) -> str:
    """What to run next: register the key with Airflow, point Airflow at the DAG, run it."""
    d = scaffold.directory
    return "\n".join([
        f"wrote {scaffold.policy}, {scaffold.suite}, {scaffold.dag} and {d / 'training' / 'train_model.py'}",
        f"PII found in the data (allowed in those columns, not used as features): {scaffold.pii_columns or 'none'}",
        f"signing key {scaffold.key} (mode 0600) owns the policy; register it with Airflow:",
        f"  airflow connections add mlgate_signing_default --conn-type mlgatesigning "
        f"--conn-password \"$(cat {scaffold.key})\"",
        "then run the pipeline:",
        f"  export AIRFLOW__CORE__DAGS_FOLDER={d / 'dags'}",
        f"  airflow dags test {scaffold.dag_id}",
    ])
