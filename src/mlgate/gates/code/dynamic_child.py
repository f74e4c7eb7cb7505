"""The child side of ``code.dynamic``: the Hypothesis loop over the user's code, in the isolated child.

``fuzz`` is what ``run_isolated`` calls (ADR 0015, 0025). It fits the small model with the training
callable when one is named, then, for each target (each preprocessing callable, the model's ``predict``)
and each phase (in-contract inputs, inputs that break the contract in one place), lets Hypothesis search
for an input that fails, shrinks it, and returns every failure as data: its kind, the exception's type and
code location, and the shrunk input's digest and shape. Never a value: exception messages are not kept
(``KeyError: 'mortgage'`` quotes the input), and Hypothesis prints nothing.

Per call the input is given twice under the same seeds (nondeterminism), with a wall-clock budget (an
alarm) under the child's memory limit; what the call writes to stdout, stderr, ``logging`` and warnings is
captured at the file-descriptor level and searched, with the exception text, for the input's distinctive
values: the canary rule of ``data.pii`` (a value the scan was given never comes out).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import re
import signal
import sys
import sysconfig
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlgate.core.callables import resolve_callable
from mlgate.gates.code.contract import Contract, parse_contract

PHASES = ("in_contract", "out_of_contract")
MAX_CAPTURE = 1 << 20
LIBRARY_PATHS = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")})
HERE = str(Path(__file__).resolve().parent)


class Failure(Exception):
    """A failing input, raised to Hypothesis so it shrinks it; one subclass per kind (one bug each)."""

    kind = "failure"


FAILURES: dict[str, type[Failure]] = {kind: type(f"{kind.title()}Failure", (Failure,), {"kind": kind})
                                      for kind in ("exception", "non_finite", "nondeterministic", "input_leak",
                                                   "budget")}


class BudgetExceeded(BaseException):  # noqa: N818 - not an error of the code: its time ran out
    """Raised by the alarm inside a call that overran its budget; a BaseException, so ``except Exception``
    in the code under test cannot swallow it."""


@dataclass
class Observation:
    digest: str = ""
    non_finite: bool = False
    error: BaseException | None = None
    seconds: float = 0.0
    text: str = ""


@dataclass
class Target:
    name: str
    call: Callable[[Any], Any]
    contract: Contract


@dataclass
class Search:
    """What one (target, phase) search saw: calls made, the first failure's time, the shrunk failures."""

    started: float  # when the first search began: first failures are timed from there
    calls: int = 0
    first_failure_s: float | None = None
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)


# ---- observing one call ------------------------------------------------------------------------------------

class Capture:
    """Everything written to fds 1 and 2 (print, C extensions, logging, warnings) while active, readable per call."""

    def __enter__(self) -> Capture:
        sys.stdout.flush()
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile()
        self.saved = (os.dup(1), os.dup(2))
        os.dup2(self.file.fileno(), 1)
        os.dup2(self.file.fileno(), 2)
        self.position = 0
        self.handler = logging.StreamHandler(sys.stderr)
        self.handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        root = logging.getLogger()
        self.level = root.level
        root.addHandler(self.handler)
        root.setLevel(logging.DEBUG)
        logging.captureWarnings(True)
        return self

    def read(self) -> str:
        """What was written since the last read (at most ``MAX_CAPTURE`` bytes of it)."""
        sys.stdout.flush()
        sys.stderr.flush()
        end = os.fstat(self.file.fileno()).st_size
        start = max(self.position, end - MAX_CAPTURE)
        self.position = end
        return os.pread(self.file.fileno(), end - start, start).decode(errors="replace") if end > start else ""

    def __exit__(self, *_exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self.level)
        logging.captureWarnings(False)
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in zip((1, 2), self.saved, strict=True):
            os.dup2(saved, fd)
            os.close(saved)
        self.file.close()


def _alarm(_signum: int, _frame: Any) -> None:
    raise BudgetExceeded


def _seed(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass


def output_facts(output: Any) -> tuple[str, bool]:
    """(digest, has NaN or ±inf) of what a call returned: arrays, frames, sparse matrices, tuples of them."""
    import numpy as np

    digest, non_finite = hashlib.sha256(), False
    parts = list(output) if isinstance(output, tuple | list) and not np.isscalar(output) else [output]
    for part in parts:
        if hasattr(part, "toarray"):  # scipy.sparse
            part = part.toarray()
        if hasattr(part, "to_numpy"):  # pandas
            part = part.to_numpy()
        array = np.asarray(part)
        if array.dtype.kind in "fc":
            non_finite |= not bool(np.isfinite(array).all())
            digest.update(f"{array.dtype}{array.shape}".encode() + np.ascontiguousarray(array).tobytes())
        elif array.dtype.kind in "biu":
            digest.update(f"{array.dtype}{array.shape}".encode() + np.ascontiguousarray(array).tobytes())
        else:
            items = array.ravel().tolist()
            non_finite |= any(isinstance(v, float) and not math.isfinite(v) for v in items)
            digest.update(json.dumps([repr(v) for v in items]).encode() + str(array.shape).encode())
    return digest.hexdigest(), non_finite


def observe(call: Callable[[Any], Any], frame: Any, capture: Capture, seed: int, budget_s: float) -> Observation:
    """One call of the code on a fresh copy of ``frame``, seeded, timed, its output and its text captured."""
    seen = Observation()
    copy = frame.copy(deep=True)
    _seed(seed)
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, budget_s)
    try:
        output = call(copy)
        signal.setitimer(signal.ITIMER_REAL, 0)
        seen.digest, seen.non_finite = output_facts(output)
    except (BudgetExceeded, Exception) as exc:  # everything the code can raise is a fact about it
        signal.setitimer(signal.ITIMER_REAL, 0)
        seen.error = exc
    seen.seconds = time.perf_counter() - start
    seen.text = capture.read()
    if seen.error is not None:
        seen.text += "\n" + exception_text(seen.error)
    return seen


def exception_text(error: BaseException) -> str:
    """The exception and its chain as Python prints them (messages and notes; no frame locals)."""
    parts, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        parts.append("".join(traceback.format_exception_only(type(error), error)))
        error = error.__cause__ or error.__context__
    return "\n".join(parts)


def location(error: BaseException) -> str:
    """``file:line in function`` of the innermost frame in the user's code (else the innermost frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    user = [f for f in frames if not f.filename.startswith(LIBRARY_PATHS) and not f.filename.startswith(HERE)]
    frame = (user or frames or [None])[-1]
    if frame is None:
        return "unknown"
    path = frame.filename
    roots = sorted((p for p in sys.path if p and path.startswith(p.rstrip("/") + "/")), key=len, reverse=True)
    short = path[len(roots[0].rstrip("/")) + 1:] if roots else Path(path).name
    return f"{short}:{frame.lineno} in {frame.name}"


# ---- the canary rule ---------------------------------------------------------------------------------------

NUMBER_EDGE = r"(?<![\d.]){}(?!\d)"


def _renderings(value: Any, public: frozenset[str]) -> tuple[set[str], set[str]]:
    """(texts, numbers) by which a distinctive ``value`` shows in text: texts of 6+ characters (and their
    escaped form), numbers with 6+ significant digits, integers of 5+ digits; the suite's own values never."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) >= 6 and text not in public and sum(ch.isalnum() for ch in text) >= 4:
            return {text[:40], repr(text)[1:41]}, set()
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000 and str(value) not in public:
        return set(), {str(value)}
    elif isinstance(value, float) and math.isfinite(value) and str(value) not in public:
        numbers = set()
        if len(repr(value).split("e")[0].lstrip("-").replace(".", "").strip("0")) >= 6:
            numbers.add(repr(value))
        if value.is_integer() and abs(value) >= 10_000:
            numbers.add(str(int(value)))
        return set(), numbers
    return set(), set()


def markers(rows: list[dict[str, Any]], public: frozenset[str],
            rejected: tuple[int, str] | None = None) -> tuple[list[str], list[re.Pattern[str]]]:
    """The renderings of the input's distinctive values, except the ``rejected`` cell's (row, column): a
    rejection may name the value it rejects (also where another cell happens to hold it), nothing else."""
    texts: set[str] = set()
    numbers: set[str] = set()
    named: tuple[set[str], set[str]] = (set(), set())
    for index, row in enumerate(rows):
        for name, value in row.items():
            shown = _renderings(value, public)
            if rejected == (index, name):
                named = shown
            texts |= shown[0]
            numbers |= shown[1]
    return sorted(texts - named[0]), [re.compile(NUMBER_EDGE.format(re.escape(n))) for n in sorted(numbers - named[1])]


def leaks(text: str, found: tuple[list[str], list[re.Pattern[str]]]) -> bool:
    texts, numbers = found
    return any(t in text for t in texts) or any(p.search(text) for p in numbers)


# ---- one input, judged ---------------------------------------------------------------------------------------

def verdict(first: Observation, second: Observation, phase: str, rejections: tuple[str, ...],
            budget_s: float, leaked: bool) -> tuple[str, BaseException | None] | None:
    """The kind of failure two calls on the same input show (and the exception behind it), or ``None``."""
    for seen in (first, second):
        if isinstance(seen.error, BudgetExceeded | MemoryError | RecursionError) or seen.seconds > budget_s:
            return "budget", seen.error
    if leaked:
        return "input_leak", first.error or second.error
    for seen in (first, second):
        error = seen.error
        if error is not None and (phase == "in_contract"
                                  or not any(cls.__name__ in rejections for cls in type(error).__mro__)):
            return "exception", error
    if (first.error is None) != (second.error is None) or first.digest != second.digest or (
            first.error is not None and type(first.error) is not type(second.error)):
        return "nondeterministic", None
    if first.non_finite:
        return "non_finite", None
    return None


def input_facts(frame: Any) -> dict[str, Any]:
    """The input's digest and shape, never its values."""
    canonical = {"columns": [str(c) for c in frame.columns], "dtypes": [str(t) for t in frame.dtypes],
                 "rows": [[repr(v) for v in row] for row in frame.itertuples(index=False)]}
    text = json.dumps(canonical, sort_keys=True)
    return {"digest": "sha256:" + hashlib.sha256(text.encode()).hexdigest(),
            "shape": f"{frame.shape[0]}x{frame.shape[1]}"}


def search(target: Target, phase: str, config: dict[str, Any], record: Search) -> None:
    """Let Hypothesis look for failing inputs of ``target`` in ``phase``; shrunk failures land in ``record``."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as fixed_seed
    from hypothesis.errors import Flaky

    from mlgate.gates.code import strategies

    contract, seed, budget = target.contract, int(config["seed"]), float(config["budget_s"])
    public = contract.public_values()
    strategy = (strategies.frames(contract, config["max_rows"]) if phase == "in_contract"
                else strategies.broken_frames(contract, config["max_rows"]))

    def attempt(example: strategies.Example) -> None:
        rows, case, rejected = example
        frame = strategies.to_frame(rows, contract)
        with Capture() as capture:
            first = observe(target.call, frame, capture, seed, budget)
            overran = isinstance(first.error, BudgetExceeded | MemoryError) or first.seconds > budget
            second = first if overran else observe(target.call, frame, capture, seed, budget)
        record.calls += 1 if overran else 2
        judged = verdict(first, second, phase, tuple(config["rejections"]), budget,
                         leaks(first.text + second.text, markers(rows, public, rejected)))
        if judged is None:
            return
        kind, error = judged
        if record.first_failure_s is None:
            record.first_failure_s = time.perf_counter() - record.started
        record.failures[kind] = {  # the last failing call of a kind is Hypothesis's replay of the shrunk input
            "kind": kind, "target": target.name, "phase": phase, "case": case, **input_facts(frame),
            "error": type(error).__name__ if error is not None else "", "location": location(error) if error else ""}
        raise FAILURES[kind]

    test = fixed_seed(seed)(settings(
        max_examples=int(config["max_examples"]), deadline=None, database=None, verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck), report_multiple_bugs=True, print_blob=False,
        phases=(Phase.explicit, Phase.generate, Phase.shrink))(given(strategy)(attempt)))
    try:
        test()
    except (Failure, Flaky):
        pass
    except BaseExceptionGroup as group:
        if group.subgroup(lambda e: not isinstance(e, Failure | Flaky | BaseExceptionGroup)) is not None:
            raise


# ---- the entry point -----------------------------------------------------------------------------------------

def sample_dtypes(data_path: str | None) -> dict[str, str]:
    """The pandas dtypes of the pipeline's data (its first rows), to type what the suite leaves untyped."""
    if not data_path:
        return {}
    import pandas as pd

    path = Path(data_path)
    reader = pd.read_parquet if path.suffix.lower() in (".parquet", ".pq") else pd.read_csv
    frame = reader(path) if reader is pd.read_parquet else reader(path, nrows=2000)
    return {str(c): str(t) for c, t in frame.dtypes.items()}


@contextmanager
def quiet_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # a warning quoting an input is seen every time, not once per place
        yield


def _model_target(training: dict[str, Any], contract: Contract, found: list[dict[str, Any]]) -> Target | None:
    """The model the training callable fits on the pipeline's data; its failure is a finding, not a crash."""
    train = resolve_callable(training["callable"], "training_callable")
    _seed(int(training["seed"]))
    try:
        output = train(data_path=training["data_path"], params=dict(training["params"]), seed=int(training["seed"]))
    except Exception as exc:  # the user's training code failed on the pipeline's own data
        found.append({"kind": "training", "target": training["callable"], "phase": "fit", "case": "",
                      "digest": "", "shape": "", "error": type(exc).__name__, "location": location(exc)})
        return None
    model = output[0] if isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], dict) else output
    features = [str(c) for c in getattr(model, "feature_names_in_", contract.names)]
    unknown = sorted(set(features) - set(contract.names))
    if unknown:
        raise ValueError(f"the model reads column(s) the data contract does not describe: {unknown}")
    view = Contract(tuple(c for name in features for c in contract.columns if c.name == name), contract.unmodelled)

    def predict(frame: Any) -> Any:
        outputs = [model.predict(frame)]
        if hasattr(model, "predict_proba"):
            outputs.append(model.predict_proba(frame))
        return tuple(outputs)

    return Target(f"{training['callable']} -> predict", predict, view)


def fuzz(*, suite: dict[str, Any], data_path: str | None, callables: list[str], training: dict[str, Any] | None,
         config: dict[str, Any]) -> dict[str, Any]:
    """Search every target in every phase; returns the findings and the search statistics (JSON)."""
    signal.signal(signal.SIGALRM, _alarm)
    contract = parse_contract(suite, sample_dtypes(data_path))
    found: list[dict[str, Any]] = []
    targets = [Target(name, resolve_callable(name, "callable"), contract) for name in callables]
    started = time.perf_counter()
    with quiet_warnings():
        if training:
            model = _model_target(training, contract, found)
            targets += [model] if model else []
        fit_s = time.perf_counter() - started
        searches, begun = [], time.perf_counter()
        for target in targets:
            for phase in PHASES:
                record = Search(begun)
                search(target, phase, config, record)
                searches.append((target, phase, record))
                seen = {f["kind"] for f in found if f["target"] == target.name}  # the in-contract bug again
                found += [f for kind, f in record.failures.items() if kind not in seen]
    elapsed = time.perf_counter() - started - fit_s
    calls = sum(r.calls for _, _, r in searches)
    firsts = [r.first_failure_s for _, _, r in searches if r.first_failure_s is not None]
    return {"findings": found, "stats": {
        "targets": len(targets), "calls": calls, "inputs": calls // 2, "search_s": round(elapsed, 3),
        "fit_s": round(fit_s, 3), "inputs_per_s": round(calls / 2 / elapsed, 2) if elapsed > 0 else 0.0,
        "first_failure_s": round(min(firsts), 3) if firsts else None,
        "columns": len(contract.columns), "unmodelled": list(contract.unmodelled)}}
