"""What an MLflow ``MLmodel`` file makes its loader do with the files beside it.

The file names in a model directory are chosen by whoever wrote it, and so is the loader: MLmodel
names the file each flavor unpickles, the ``loader_module`` pyfunc imports, a ``code`` directory it
puts on ``sys.path`` and a cloudpickled ``python_model``. So the scanner judges every path a flavor
names as what that flavor's loader does with it, whatever its extension, and refuses code that runs
at load (loader modules outside MLflow's own flavors, code directories, python models) unless the
policy allows those exact files by digest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

# Flavor modules MLflow ships whose loaders read only the files judged below.
ALLOWED_LOADER_MODULES = frozenset({
    "mlflow.sklearn", "mlflow.pytorch", "mlflow.xgboost", "mlflow.lightgbm", "mlflow.keras",
    "mlflow.tensorflow", "mlflow.onnx",
})

# How a loader reads a file: "pickle" (pickle/cloudpickle/joblib, judged as a pickle whatever it is
# named), "skops", "torch" (torch.load: a zip archive or the legacy format), "pt2", "keras", "data"
# (a format whose loader runs no code: XGBoost/LightGBM models, ONNX).
_SKLEARN_FORMATS = {"pickle": "pickle", "cloudpickle": "pickle", "skops": "skops"}


@dataclass
class MLmodelPlan:
    """Paths (relative to the model directory) and how their loader reads them, and refusals."""

    kinds: dict[str, str] = field(default_factory=dict)
    code: list[tuple[str, str]] = field(default_factory=list)  # (path, why it runs at load)
    problems: list[str] = field(default_factory=list)


def _relative(value: Any, plan: MLmodelPlan, key: str) -> str | None:
    """A path MLmodel names, kept inside the model directory (no absolute path, no ``..``)."""
    if not isinstance(value, str) or not value:
        plan.problems.append(f"{key} is not a path")
        return None
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts:
        plan.problems.append(f"{key} points outside the model directory: {value!r}")
        return None
    return path.as_posix().rstrip("/") or "."


def plan_mlmodel(text_yaml: Any) -> MLmodelPlan:
    """Read a parsed ``MLmodel`` document; every path is relative to its directory."""
    plan = MLmodelPlan()
    flavors = text_yaml.get("flavors") if isinstance(text_yaml, dict) else None
    if not isinstance(flavors, dict):
        plan.problems.append("MLmodel has no flavors mapping")
        return plan
    for name, conf in flavors.items():
        if not isinstance(conf, dict):
            plan.problems.append(f"flavor {name!r} is not a mapping")
            continue
        reader = _FLAVORS.get(name)
        if reader is None:
            plan.problems.append(f"flavor {name!r} is not one whose loader this gate can judge")
            continue
        # pyfunc and every flavor's own load_model put their ``code`` path on sys.path before loading
        if conf.get("code") is not None and (path := _relative(conf["code"], plan, f"{name}.code")):
            plan.code.append((path, f"a code directory ({name}): it is put on sys.path and imported at load"))
        reader(conf, plan)
    return plan


def _name(plan: MLmodelPlan, conf: dict, key: str, kind: str) -> None:
    if key in conf and (path := _relative(conf[key], plan, key)):
        plan.kinds[path] = kind


# pyfunc.load_model hands ``data`` (or the model directory) to the loader module; mlflow.sklearn unpickles
# a ``data`` file (or ``model_path``) whatever it is named, mlflow.pytorch torch-loads a file or reads a directory.
_PYFUNC_PATHS = {"mlflow.sklearn": (("model_path", "pickle"), ("data", "pickle")),
                 "mlflow.pytorch": (("data", "torch-dir"),)}


def _pyfunc(conf: dict, plan: MLmodelPlan) -> None:
    loader = conf.get("loader_module")
    if "python_model" in conf:
        if (path := _relative(conf["python_model"], plan, "python_model")):
            plan.kinds[path] = "pickle"
            plan.code.append((path, "a cloudpickled python_model: its class and functions run at load"))
    elif loader not in ALLOWED_LOADER_MODULES:
        plan.problems.append(f"loader_module {loader!r} is not one of MLflow's own flavors: it is imported "
                             "and run at load")
    # The loader reads these even where its own flavor section is missing; a flavor section refines them.
    for key, kind in _PYFUNC_PATHS.get(loader, ()):
        if key in conf and (path := _relative(conf[key], plan, key)):
            plan.kinds.setdefault(path, kind)
    module = conf.get("pickle_module_name")
    if module is not None and module not in MODULE_FILES["pickle_module_info.txt"]:
        plan.problems.append(f"pickle_module_name {module!r} is imported and used to load the model")
    artifacts = conf.get("artifacts") or {}
    if isinstance(artifacts, dict):
        for key, entry in artifacts.items():
            if isinstance(entry, dict) and "path" in entry:
                _relative(entry["path"], plan, f"artifacts.{key}.path")


def _sklearn(conf: dict, plan: MLmodelPlan) -> None:
    fmt = conf.get("serialization_format", "cloudpickle")
    kind = _SKLEARN_FORMATS.get(fmt)
    if kind is None:
        plan.problems.append(f"sklearn serialization_format {fmt!r} is unknown")
        kind = "pickle"
    _name(plan, conf, "pickled_model", kind)


def _pytorch(conf: dict, plan: MLmodelPlan) -> None:
    _name(plan, conf, "model_data", "torch-dir")


# mlflow.xgboost imports ``model_class`` by name and calls it: only XGBoost's own classes may be named.
XGBOOST_CLASSES = frozenset(f"xgboost.{name}" for name in (
    "core.Booster", "sklearn.XGBModel", "sklearn.XGBClassifier", "sklearn.XGBRegressor", "sklearn.XGBRanker",
    "sklearn.XGBRFClassifier", "sklearn.XGBRFRegressor"))
_LGB_BOOSTER = "lightgbm.basic.Booster"


def _xgboost(conf: dict, plan: MLmodelPlan) -> None:
    """XGBoost's loader reads its own format (no code), after importing and calling ``model_class``."""
    model_class = conf.get("model_class", "xgboost.core.Booster")
    if model_class not in XGBOOST_CLASSES:
        plan.problems.append(f"xgboost model_class {model_class!r} is imported and called at load: not one of "
                             "XGBoost's model classes")
    _name(plan, conf, "data", "data")


def _lightgbm(conf: dict, plan: MLmodelPlan) -> None:
    """LightGBM: a Booster reads its own format (no code); any other ``model_class`` makes mlflow.lightgbm load
    the file with scikit-learn's loader, by ``serialization_format`` — cloudpickle when it is absent."""
    if conf.get("model_class", _LGB_BOOSTER) == _LGB_BOOSTER:
        _name(plan, conf, "data", "data")
        return
    fmt = conf.get("serialization_format", "cloudpickle")
    if fmt not in _SKLEARN_FORMATS:
        plan.problems.append(f"serialization_format {fmt!r} is unknown")
    _name(plan, conf, "data", _SKLEARN_FORMATS.get(fmt, "pickle"))


def _keras(conf: dict, plan: MLmodelPlan) -> None:
    module = conf.get("keras_module")  # mlflow.tensorflow imports it by name before loading
    if module is not None and module not in MODULE_FILES["keras_module.txt"]:
        plan.problems.append(f"keras_module {module!r} is imported at load: not Keras")
    _name(plan, conf, "data", "keras-dir")


_FLAVORS = {
    "python_function": _pyfunc,
    "sklearn": _sklearn,
    "pytorch": _pytorch,
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "onnx": lambda conf, plan: _name(plan, conf, "data", "data"),
    "keras": _keras,
    "tensorflow": _keras,
}

# Inside a flavor's data directory: the files its loader reads, and the text files that name a module
# the loader imports (so they may only name MLflow's or Keras' own).
_DIR_FILES = {
    "torch-dir": {"model.pth": "torch", "model.pt2": "pt2"},
    "keras-dir": {"model.keras": "keras", "model.h5": "keras"},
}
_DIR_AS_FILE = {"torch-dir": "torch", "keras-dir": "keras"}  # a data "directory" that is a file: loaded as one
MODULE_FILES = {
    "pickle_module_info.txt": frozenset({"mlflow.pytorch.pickle_module"}),
    "keras_module.txt": frozenset({"keras", "tensorflow.keras"}),
}


def file_kinds(model_dir: Path, plan: MLmodelPlan, files: list[Path]) -> dict[Path, str]:
    """The loader's reading of each file the plan names (directories expanded to what they hold)."""
    kinds: dict[Path, str] = {}
    for relative, kind in plan.kinds.items():
        target = model_dir / relative
        if kind not in _DIR_FILES or target in files:
            kinds[target] = _DIR_AS_FILE.get(kind, kind)
            continue
        for file in files:
            if target in file.parents:
                name = file.relative_to(target).as_posix()
                if name in MODULE_FILES:
                    kinds[file] = f"module:{name}"
                elif name in _DIR_FILES[kind]:
                    kinds[file] = _DIR_FILES[kind][name]
    return kinds
