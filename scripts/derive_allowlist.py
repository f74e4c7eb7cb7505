"""Derive ``model.artifact``'s class allowlist from the pickles real estimators produce.

Fits a corpus of real models and data objects (every scikit-learn estimator that fits with its
defaults, a few meta-estimators and pipelines, numpy, pandas, scipy, torch modules and state dicts,
xgboost and lightgbm where installed), serialises each the ways MLflow and users do (pickle protocols
0-5, joblib, skops), walks the bytes with the gate's own scanner and records every global they import.

A global is admitted when it is a class (imported here, in this trusted process, from our own
pickles) and not a known gadget class, or when ``safe_globals.REVIEWED_CALLABLES`` reviewed it. Any
other global is FLAGGED: printed, left out, and the script exits 1 — review it, then either add it to
``REVIEWED_CALLABLES`` with a reason or leave it out. Results are written per library release into
``src/mlgate/gates/model/safe_globals.json`` (existing releases are kept).

    PYTHONPATH=src .venv/bin/python scripts/derive_allowlist.py
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import io
import json
import pickle
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from mlgate.gates.model.pickle_scan import scan_pickles
from mlgate.gates.model.safe_globals import DATA, REVIEWED_CALLABLES

# Classes that are callables in disguise: constructing one calls, imports or reads what its arguments name.
GADGET_CLASSES = frozenset({
    "builtins.type", "builtins.super", "builtins.property", "builtins.staticmethod", "builtins.classmethod",
    "builtins.memoryview", "functools.partial", "functools.partialmethod", "operator.attrgetter",
    "operator.itemgetter", "operator.methodcaller", "subprocess.Popen", "io.FileIO", "io.BufferedReader",
    "io.TextIOWrapper", "io.open", "pathlib.Path", "pathlib.PosixPath", "types.FunctionType", "types.CodeType",
    "types.ModuleType", "threading.Thread", "multiprocessing.Process", "ctypes.CDLL", "zipimport.zipimporter",
    "code.InteractiveInterpreter", "code.InteractiveConsole", "pickle.Unpickler", "_pickle.Unpickler",
})
# Non-class globals real objects need that were reviewed and refused (they stay blocked).
REFUSED = {"torch.storage._load_from_bytes": "runs torch.load(weights_only=False) on embedded bytes "
                                            "(plain-pickled torch modules; torch.save does not need it)"}
LIBRARIES = {"sklearn": "scikit-learn", "numpy": "numpy", "pandas": "pandas", "scipy": "scipy",
             "torch": "torch", "xgboost": "xgboost", "lightgbm": "lightgbm", "joblib": "joblib"}


def _xy(n: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(n, 4))) + 0.1
    return x, (x[:, 0] > x[:, 1]).astype(int), x[:, 0] * 2 + x[:, 2]


def _sklearn_models() -> Iterator[tuple[str, object]]:
    from sklearn.utils import all_estimators

    x, y_class, y_reg = _xy()
    for name, cls in all_estimators():
        try:
            est = cls()
        except TypeError:
            continue
        for args in ((x, y_class), (x, y_reg), (x,)):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    yield f"sklearn.{name}", est.fit(*args)
                break
            except Exception:  # noqa: S112 - an estimator that does not fit these data is simply skipped
                continue
    yield from _sklearn_composites(x, y_class)


def _sklearn_composites(x: np.ndarray, y: np.ndarray) -> Iterator[tuple[str, object]]:
    import pandas as pd
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.ensemble import StackingClassifier, VotingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline, make_union
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": np.where(y > 0, "u", "v")})
    prep = ColumnTransformer([("num", Pipeline([("imp", SimpleImputer()), ("sc", StandardScaler())]), ["a", "b"]),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), ["c"])])
    yield "sklearn.pipeline_frame", Pipeline([("prep", prep), ("lr", LogisticRegression())]).fit(frame, y)
    yield "sklearn.grid", GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(x, y)
    yield "sklearn.calibrated", CalibratedClassifierCV(LogisticRegression(), cv=2).fit(x, y)
    estimators = [("lr", LogisticRegression()), ("dt", DecisionTreeClassifier(max_depth=2))]
    yield "sklearn.voting", VotingClassifier(estimators).fit(x, y)
    yield "sklearn.stacking", StackingClassifier(estimators, cv=2).fit(x, y)
    yield "sklearn.union", make_union(StandardScaler(), SimpleImputer()).fit(x)
    yield "sklearn.ttr", TransformedTargetRegressor(LinearRegression()).fit(x, x[:, 0])


def _data_objects() -> Iterator[tuple[str, object]]:
    import collections
    import datetime
    import decimal

    import pandas as pd
    import scipy.sparse as sp

    yield "python.values", [{1, 2}, frozenset({3}), 1j, bytearray(b"x"), b"y", range(3), slice(1, 2),
                            collections.OrderedDict(a=1), collections.defaultdict(list), collections.Counter("ab"),
                            collections.deque([1]), datetime.datetime(2020, 1, 2, tzinfo=datetime.UTC),
                            datetime.date(2020, 1, 2), datetime.time(1), datetime.timedelta(1), decimal.Decimal("1")]
    rng = np.random.default_rng(0)
    yield "numpy.arrays", [np.arange(5.0), np.arange(5, dtype=np.int32), np.array(["a", 1], dtype=object),
                           np.zeros(2, dtype=[("a", "<f4"), ("b", "<i8")]), np.array(["2020-01-01"], "M8[D]"),
                           np.ma.masked_array([1, 2], mask=[0, 1]), np.float64(1.5), np.int64(3), np.bool_(True),
                           np.array([1 + 2j]), np.array(["ab"], dtype="U2"), np.array([b"x"], dtype="S1")]
    yield "numpy.random", [np.random.RandomState(0), rng, np.random.Generator(np.random.PCG64(1)),
                           np.random.Generator(np.random.MT19937(1)), np.random.Generator(np.random.Philox(1)),
                           np.random.Generator(np.random.SFC64(1))]
    yield "scipy.sparse", [getattr(sp, f"{fmt}_{kind}")(np.eye(3)) for fmt in ("csr", "csc", "coo", "bsr", "dia",
                                                                                 "dok", "lil")
                           for kind in ("matrix", "array")]
    frame = pd.DataFrame({"f": [1.0, 2.0], "i": [1, 2], "s": ["a", "b"], "c": pd.Categorical(["x", "y"]),
                          "t": pd.to_datetime(["2020-01-01", "2020-01-02"]).tz_localize("UTC"),
                          "d": pd.to_timedelta([1, 2], unit="s"), "b": [True, False],
                          "n": pd.array([1, None], dtype="Int64"), "str": pd.array(["a", None], dtype="string")})
    yield "pandas.frames", [frame, frame["f"], frame.set_index("s"), pd.period_range("2020", periods=2, freq="M"),
                            pd.interval_range(0, 2), pd.MultiIndex.from_tuples([(1, "a")]), pd.RangeIndex(3),
                            pd.date_range("2020", periods=2, freq="D")]


def _torch_objects() -> Iterator[tuple[str, object]]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    modules = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Dropout(), nn.Linear(8, 4), nn.LayerNorm(4), nn.GELU(), nn.Tanh(), nn.Sigmoid(),
                            nn.Softmax(dim=-1), nn.Identity(), nn.LeakyReLU(), nn.Embedding(4, 2), nn.LSTM(2, 2),
                            nn.GRU(2, 2), nn.Conv1d(1, 1, 1), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1),
                            nn.BatchNorm1d(2), nn.ModuleList([nn.Linear(1, 1)]), nn.ModuleDict({"a": nn.ELU()}),
                            nn.SiLU(), nn.Softplus(), nn.Unflatten(1, (1, 1)), nn.ConvTranspose2d(1, 1, 1))
    yield "torch.state_dict", modules.state_dict()
    yield "torch.tensors", [torch.zeros(2, dtype=dtype) for dtype in (
        torch.float16, torch.float32, torch.float64, torch.bfloat16, torch.int8, torch.int16, torch.int32,
        torch.int64, torch.uint8, torch.bool, torch.complex64)] + [nn.Parameter(torch.ones(2)), torch.Size([2])]
    yield "torch.modules", modules
    optimizer = torch.optim.Adam(modules.parameters())
    yield "torch.optimizer", optimizer.state_dict()


def _boosters() -> Iterator[tuple[str, object]]:
    x, y, y_reg = _xy()
    for module, classes in (("xgboost", ("XGBClassifier", "XGBRegressor")),
                            ("lightgbm", ("LGBMClassifier", "LGBMRegressor"))):
        try:
            lib = importlib.import_module(module)
        except ImportError:
            print(f"{module} not installed: skipped", file=sys.stderr)
            continue
        for name in classes:
            model = getattr(lib, name)(n_estimators=3)
            yield f"{module}.{name}", model.fit(x, y if "Class" in name else y_reg)
        if module == "xgboost":
            yield "xgboost.Booster", lib.train({}, lib.DMatrix(x, label=y), num_boost_round=2)
        else:
            yield "lightgbm.Booster", lib.train({"verbose": -1}, lib.Dataset(x, label=y), num_boost_round=2)


def _serialised(name: str, obj: object) -> Iterator[tuple[str, bytes]]:
    """The bytes of every way the object is commonly saved: pickle 0-5 (cloudpickle writes the same
    for importable classes), joblib, torch.save, skops (its schema, as JSON)."""
    for protocol in (0, 2, 4, 5):
        yield f"pickle{protocol}", pickle.dumps(obj, protocol=protocol)
    with tempfile.TemporaryDirectory() as tmp:
        import joblib

        path = Path(tmp) / "m.joblib"
        joblib.dump(obj, path)
        yield "joblib", path.read_bytes()
        if name.startswith("torch."):
            import torch

            buf = io.BytesIO()
            torch.save(obj, buf)
            with zipfile.ZipFile(buf) as archive:
                yield "torch.save", archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
        if name.startswith("sklearn."):
            from skops.io import dumps
            from skops.io.exceptions import UnsupportedTypeException

            try:
                saved = dumps(obj)
            except UnsupportedTypeException:
                return  # skops refuses the type: MLflow then cannot save it as skops either
            with zipfile.ZipFile(io.BytesIO(saved)) as archive:
                yield "skops", archive.read("schema.json")


def _skops_globals(schema: bytes) -> Iterator[str]:
    def walk(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("__module__"), str) and isinstance(node.get("__class__"), str):
                yield f"{node['__module__']}.{node['__class__']}"
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    yield from walk(json.loads(schema))


def _resolve(qualname: str) -> object:
    parts = qualname.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(qualname)


def _release(qualname: str) -> str:
    top = qualname.split(".", 1)[0].lstrip("_")
    dist = LIBRARIES.get(top)
    if dist is None:
        return f"python=={sys.version_info.major}.{sys.version_info.minor}"
    return f"{dist}=={importlib.metadata.version(dist)}"


def main() -> int:
    sources: list[Callable[[], Iterator[tuple[str, object]]]] = [_data_objects, _sklearn_models, _torch_objects,
                                                                 _boosters]
    needed: dict[str, set[str]] = {}
    for source in sources:
        try:
            objects = list(source())
        except ImportError as exc:
            print(f"{source.__name__}: {exc}: skipped", file=sys.stderr)
            continue
        for name, obj in objects:
            for how, data in _serialised(name, obj):
                names = _skops_globals(data) if how == "skops" else (
                    ref.qualname for ref in scan_pickles(data).globals)
                for qualname in names:
                    needed.setdefault(qualname, set()).add(f"{name}/{how}")
    releases: dict[str, dict[str, list[str]]] = {}
    flagged = {}
    for qualname in sorted(needed):
        if qualname in REVIEWED_CALLABLES or qualname in REFUSED:
            continue
        try:
            obj = _resolve(qualname)
        except (ImportError, AttributeError) as exc:
            flagged[qualname] = f"cannot be imported here ({type(exc).__name__})"
            continue
        if not inspect.isclass(obj) or qualname in GADGET_CLASSES:
            flagged[qualname] = "not a class" if not inspect.isclass(obj) else "a known gadget class"
            continue
        releases.setdefault(_release(qualname), {"classes": []})["classes"].append(qualname)
    data = json.loads(DATA.read_text()) if DATA.exists() else {"releases": {}}
    data["generated_by"] = "scripts/derive_allowlist.py"
    data["releases"].update(releases)
    DATA.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    unused = sorted(set(REVIEWED_CALLABLES) - set(needed))
    print(f"{len(needed)} globals needed; {sum(len(r['classes']) for r in releases.values())} classes recorded "
          f"in {', '.join(sorted(releases))}; reviewed callables unused by this corpus: {unused}")
    for qualname, why in REFUSED.items():
        if qualname in needed:
            print(f"refused {qualname}: {why}")
    for qualname, why in flagged.items():
        print(f"FLAGGED {qualname}: {why} (needed by {sorted(needed[qualname])[:3]})")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
