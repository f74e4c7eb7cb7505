"""``model.artifact`` against modelscan, picklescan and fickling: detection on one corpus, and throughput.

Builds the corpus of ``tests/fixtures/model_corpus.py`` (benign scikit-learn/joblib/torch/safetensors/
ONNX/MLflow files, and malicious ones with harmless payloads), runs all four tools on every case and
prints a detection table, then times mlgate and picklescan on a 200 MB pickle of numpy arrays (20 MB
with ``--quick``) and on an opcode-heavy pickle, beside mlgate as it was before issue 14's work
(``--baseline``, a commit whose ``src`` is checked out into the scratch folder): issue 14 asks the gate to
stay at least as fast. Each timing is the CPU time of ``scan_path`` in a fresh process, best of three scans
there (the per-file cost; start-up is ``startup.py``'s), then best of N processes, the tools interleaved (the
shared host is loaded: CPU, not wall). The reference tools live in their own venv
(``--bench-venv`` or ``MLGATE_BENCH_VENV``, default ``.venv-bench``): their CLIs are run as subprocesses.

    .venv/bin/python benchmarks/artifacts.py [--quick] [--bench-venv .venv-bench] [--baseline REV]

With ``--peer NAME=SNAPSHOT`` (``picklescan``, ``modelscan``, ``fickling``; a git directory as the ``fetch``
tool leaves it) it rebuilds that project's published test samples in a scratch folder instead and prints
caught / false alarms on them: picklescan's ``tests/data`` and ``tests/data2`` files and modelscan's
``tests/data`` files and the files its test fixtures generate (labelled by their names, or by the peer's test
where a name misleads), fickling's fixtures and every pickle its tests hand to ``check_safety`` (captured by
running its test suite in the bench venv, labelled with fickling's own verdict in the tests that pass, their
assertions agreeing with it, unless the test's name says its input is benign). Nothing of theirs is kept.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pickle
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import model_corpus as corpus  # noqa: E402

from mlgate.gates.model.artifacts import scan_path  # noqa: E402

# the last commit before issue 14 changed the pickle walker (cbab2fc: exact allowlist, faithful framing)
BASELINE = "21e2d1d"
_PICKLESCAN_TIMER = (
    "import sys, time\nfrom picklescan.scanner import scan_file_path\n"
    "t = time.process_time(); r = scan_file_path(sys.argv[1]); s = time.process_time() - t\n"
    "print(s, r.scan_err, r.issues_count)\n")
# The per-file cost: the best of three scans in one process (what is paid once per process, imports and the
# allowlist's loading, is start-up: benchmarks/startup.py).
_MLGATE_TIMER = (
    "import sys, time\nfrom pathlib import Path\nfrom mlgate.gates.model.artifacts import scan_path\n"
    "best = float('inf')\nfor _ in range(3):\n"
    "    t = time.process_time(); findings = scan_path(Path(sys.argv[1])); best = min(best, time.process_time() - t)\n"
    "    assert findings == [], findings\nprint(best)\n")


def _verdict(rc: int, blocked_codes: set[int], skipped_codes: set[int] = frozenset()) -> str:
    if rc == 0 or rc in skipped_codes:
        return "pass"
    return "block" if rc in blocked_codes else "error"


def _run_tool(tool: str, venv: Path, path: Path, cwd: Path) -> str:
    """One reference tool's verdict on a file or directory: pass, block or error (run in ``cwd``:
    fickling writes its report there)."""
    binary = str(venv / "bin" / tool)
    if tool == "fickling":  # one pickle file at a time
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        verdicts = [_run_tool_file([binary, "--check-safety", str(f)], cwd, {1}) for f in files]
        return next((v for v in ("block", "error") if v in verdicts), "pass")
    argv = {"modelscan": [binary, "-p", str(path)], "picklescan": [binary, "-p", str(path)]}[tool]
    # modelscan: 1 issues found, 3 nothing it could scan; picklescan: 1 dangerous globals found.
    return _run_tool_file(argv, cwd, {1}, {3} if tool == "modelscan" else set())


def _run_tool_file(argv: list[str], cwd: Path, blocked: set[int], skipped: set[int] = frozenset()) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=300, cwd=cwd,
                              env={**os.environ, "NO_COLOR": "1"})
    except subprocess.TimeoutExpired:
        return "error"
    return _verdict(proc.returncode, blocked, skipped)


def _mark(case: corpus.Case, verdict: str) -> str:
    """malicious: caught / error (the tool crashed: blocks only if the caller fails closed) / MISSED;
    benign: ok / FALSE-BLOCK / FALSE-ERROR."""
    if case.malicious:
        return {"block": "caught", "error": "error", "pass": "MISSED"}[verdict]
    return "ok" if verdict == "pass" else f"FALSE-{verdict.upper()}"


def detection(work: Path, venv: Path | None) -> None:
    tools = ["modelscan", "picklescan", "fickling"] if venv else []
    cases = [c for c in corpus.CASES if not c.needs or importlib.util.find_spec(c.needs)]
    paths = corpus.build_corpus(work, cases)
    rows, counts = [], {t: {"caught": 0, "ok": 0} for t in ["mlgate", *tools]}
    for case in cases:
        verdicts = {"mlgate": "block" if scan_path(paths[case.name]) else "pass"}
        verdicts.update({tool: _run_tool(tool, venv, paths[case.name], work) for tool in tools})
        marks = {tool: _mark(case, v) for tool, v in verdicts.items()}
        for tool, mark in marks.items():
            if mark in ("caught", "ok"):
                counts[tool][mark] += 1
        rows.append([case.name, "malicious" if case.malicious else "benign", *marks.values()])
    header = ["case", "kind", "mlgate", *tools]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    bad, good = sum(c.malicious for c in cases), sum(not c.malicious for c in cases)
    for tool, count in counts.items():
        print(f"{tool:10} caught {count['caught']}/{bad} malicious, passed {count['ok']}/{good} benign")


def _time_mlgate(src: Path, path: Path) -> float:
    """CPU seconds of ``scan_path`` from the mlgate source tree ``src``, in a fresh process."""
    proc = subprocess.run([sys.executable, "-c", _MLGATE_TIMER, str(path)], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "PYTHONPATH": str(src)}, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"mlgate timing ({src}) failed: {proc.stderr.strip()[-500:]}")
    return float(proc.stdout.split()[-1])


def checkout_src(rev: str, into: Path) -> Path | None:
    """``src`` of commit ``rev`` of this repository, extracted under ``into``; None without git history."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, timeout=120,
                             check=False)
    if archive.returncode != 0:
        print(f"baseline skipped: cannot read commit {rev} ({archive.stderr.decode().strip()[:200]})")
        return None
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True, timeout=120)
    return into / "src"


def _time_picklescan(venv: Path, path: Path) -> float | None:
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", _PICKLESCAN_TIMER, str(path)],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        print(f"picklescan timing failed: {proc.stderr.strip()[-300:]}")
        return None
    return float(proc.stdout.split()[0])


def throughput(work: Path, venv: Path | None, megabytes: int, baseline: Path | None, repeats: int) -> None:
    rng = np.random.default_rng(0)
    n_arrays = 8
    per_array = megabytes * 1024 * 1024 // 8 // n_arrays
    payloads = {
        f"{megabytes} MB dict of arrays":
            {f"layer{i}": rng.standard_normal(per_array) for i in range(n_arrays)},
        "opcode-heavy (list of 300k small dicts)":
            [{"id": i, "w": float(i), "tag": "x"} for i in range(300_000)],
    }
    timers = {"mlgate": lambda p: _time_mlgate(ROOT / "src", p)}
    if baseline:
        timers[f"before ({BASELINE})"] = lambda p: _time_mlgate(baseline, p)
    if venv:
        timers["picklescan"] = lambda p: _time_picklescan(venv, p)
    print(f"\nCPU seconds, best of {repeats}, interleaved")
    print(f"{'pickle':42} {'size MB':>8} " + " ".join(f"{name:>18}" for name in timers)
          + f" {'mlgate/before':>14} {'picklescan/mlgate':>18}")
    for label, obj in payloads.items():
        path = work / "large.pkl"
        with path.open("wb") as handle:
            pickle.dump(obj, handle, protocol=4)
        best = dict.fromkeys(timers, float("inf"))
        for _ in range(repeats):
            for name, timer in timers.items():
                best[name] = min(best[name], timer(path) or float("inf"))
        ours, before, theirs = best["mlgate"], best.get(f"before ({BASELINE})"), best.get("picklescan")
        ratio = f"{ours / before:14.2f}" if before and before > 1e-3 else f"{'(both < 1 ms)':>14}"
        ref = f"{theirs / ours:18.1f}" if theirs and ours > 1e-3 else f"{'-':>18}"
        print(f"{label:42} {path.stat().st_size / 1e6:8.1f} " + " ".join(f"{v:18.4f}" for v in best.values())
              + f" {ratio} {ref}")
        path.unlink()


_BENIGN_NAME = re.compile(r"benign|(?<!un)safe|legit|clean|not_flagged|false_positive|allowed|pytorch_model\.bin$",
                          re.IGNORECASE)
_BENIGN_TEST = re.compile(r"benign|not_flagged|legit|false_positive")
_MALICIOUS_NAME = re.compile(r"malicious|bad|sploit|bypass|unsafe|evil|payload|inject", re.IGNORECASE)
_FICKLING_CAPTURE = """
import sys, unittest, pathlib, itertools
import fickling.analysis as analysis
out, counter, current, pending = pathlib.Path(sys.argv[2]), itertools.count(), ["?"], []
original = analysis.check_safety
def capture(pickled, *args, **kwargs):
    result = original(pickled, *args, **kwargs)
    try:
        path = out / f"{current[0]}_{next(counter)}"
        path.write_bytes(pickled.dumps())
        pending.append((path, result.severity > analysis.Severity.LIKELY_SAFE))
    except Exception:
        pass
    return result
analysis.check_safety = capture
import fickling, fickling.fickle
fickling.check_safety = capture
sys.path.insert(0, sys.argv[1])
suite = unittest.defaultTestLoader.discover(sys.argv[1] + "/test", top_level_dir=sys.argv[1])
def walk(s):
    for t in s:
        yield from (walk(t) if isinstance(t, unittest.TestSuite) else [t])
for test in walk(suite):
    current[0], result = test.id().rsplit(".", 1)[-1], unittest.TestResult()
    test.run(result)
    for path, unsafe in pending:  # a passing test agrees with fickling's verdict: that is the label
        if result.wasSuccessful():
            path.rename(path.with_name(path.name + (".malicious.pkl" if unsafe else ".benign.pkl")))
        else:
            path.unlink()
    pending.clear()
"""


def _git_files(snapshot: Path, prefix: str) -> list[str]:
    out = subprocess.run(["git", "--git-dir", str(snapshot), "ls-tree", "-r", "--name-only", "HEAD", prefix],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [line for line in out.splitlines() if line]


def _git_write(snapshot: Path, name: str, target: Path) -> bool:
    """Write one file of the snapshot; False where the snapshot lists it without its content (large files)."""
    proc = subprocess.run(["git", "--git-dir", str(snapshot), "show", f"HEAD:{name}"], capture_output=True,
                          timeout=60)
    if proc.returncode != 0:
        print(f"  {name}: not in the snapshot, skipped")
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(proc.stdout)
    return True


# Where a name misleads, the label the peer's own tests give the file.
_PEER_LABELS: dict[str, bool | None] = {
    "bad_pytorch.pt": None,  # a PNG header named .pt: both peers' tests expect "not a pickle", no issue
    "broken_model.pkl": True,  # picklescan's test_scan_directory_path: builtins.exec, dangerous
    "test.zip": True,  # modelscan's test_scan_zip: eval inside data.pkl
    "password_protected.zip": None,  # modelscan: skipped as encrypted; mlgate: cannot inspect
}
# picklescan's test_scanner.py asserts a dangerous global for every tests/data2 file but its numpy arrays.
_PICKLESCAN_DATA2_BENIGN = re.compile(r"(int|object)_arrays?(_compressed)?\.np[yz]$")


def _label(name: str) -> bool | None:
    """True malicious, False benign, None neither (junk such as not_a_pickle.bin: not a model file)."""
    if Path(name).name in _PEER_LABELS:
        return _PEER_LABELS[Path(name).name]
    if "tests/data2/" in name:
        return not _PICKLESCAN_DATA2_BENIGN.search(name)
    if _BENIGN_NAME.search(name):
        return False
    return True if _MALICIOUS_NAME.search(name) else None


def rebuild_peer(peer: str, snapshot: Path, scratch: Path, venv: Path | None) -> dict[Path, bool | None]:
    """The peer's test samples written under ``scratch``, each with its label."""
    cases: dict[Path, bool | None] = {}
    data_dirs = {"picklescan": ["tests/data", "tests/data2"], "modelscan": ["tests/data"],
                 "fickling": ["test/fixtures"]}[peer]
    for name in (n for d in data_dirs for n in _git_files(snapshot, d)):
        if not name.endswith(".py") and _git_write(snapshot, name, scratch / Path(name).name):
            cases[scratch / Path(name).name] = _label(name) if peer != "fickling" else False
    if peer == "modelscan":
        cases.update(_modelscan_fixtures(snapshot, scratch))
    if peer == "fickling" and venv is not None:
        source = scratch.parent / "fickling-src"
        for name in _git_files(snapshot, "test"):
            _git_write(snapshot, name, source / name)
        captured = scratch / "captured"
        captured.mkdir()
        subprocess.run([str(venv / "bin" / "python"), "-c", _FICKLING_CAPTURE, str(source), str(captured)],
                       capture_output=True, timeout=900, cwd=scratch.parent)
        for path in sorted(captured.iterdir()):  # a test that says its input is benign outranks the verdict
            cases[path] = path.name.endswith(".malicious.pkl") and not _BENIGN_TEST.search(path.name)
    return cases


_MODELSCAN_FIXTURES = """
import importlib.abc, importlib.machinery, os, pathlib, sys, types
os.environ.setdefault("KERAS_BACKEND", "torch")


class Stub:
    def __init__(self, *args, **kwargs): pass
    def __call__(self, *args, **kwargs): return args[0] if len(args) == 1 and callable(args[0]) else Stub()
    def __getattr__(self, name): return Stub


class StubModule(types.ModuleType):
    def __getattr__(self, name): return Stub


class Stubs(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tensorflow", "modelscan"):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec): return StubModule(spec.name)
    def exec_module(self, module): module.__path__ = []


sys.meta_path.insert(0, Stubs())
import keras
sys.modules["tf_keras"] = keras
sys.path.insert(0, sys.argv[1])
import test_modelscan as t
out = pathlib.Path(sys.argv[2])


class Factory:
    def mktemp(self, name):
        (out / name).mkdir(parents=True, exist_ok=True)
        return out / name


for name, args in [("zip_file_path", ()), ("pytorch_file_path", ()), ("file_path", ()), ("numpy_file_path", ()),
                   ("keras_file_path", (["h5", "keras"],))]:
    fixture = getattr(t, name)
    try:
        getattr(fixture, "_get_wrapped_function", lambda: fixture)()(Factory(), *args)
    except Exception as exc:
        print(f"{name}: {type(exc).__name__}: {exc}"[:300], file=sys.stderr)
"""


def _modelscan_fixtures(snapshot: Path, scratch: Path) -> dict[Path, bool | None]:
    """The files modelscan's test fixtures generate, built by those fixtures themselves in this venv: TensorFlow
    is absent (its names are inert stubs; its SavedModel cases are not built) and Keras 3 on the torch backend
    stands in for tf_keras (its ``.keras``/``.h5`` files, a pickled and a dill-injected model)."""
    source, out = scratch.parent / "modelscan-src", scratch / "generated"
    for name in _git_files(snapshot, "tests"):
        _git_write(snapshot, name, source / name)
    proc = subprocess.run([sys.executable, "-c", _MODELSCAN_FIXTURES, str(source / "tests"), str(out)],
                          capture_output=True, text=True, timeout=900, cwd=scratch.parent, check=False)
    for line in proc.stderr.splitlines():
        if "_path:" in line:
            print(f"  modelscan fixture {line}")
    return {path: _label(path.name) for path in sorted(out.rglob("*")) if path.is_file()}


def _junk_bucket(verdict: str, findings: list) -> int:
    """0: passes or says "not a model file"; 1: an encrypted archive it cannot inspect; 2: anything else."""
    if verdict == "pass" or all("not a model file" in f.message for f in findings):
        return 0
    return 1 if all(f.id.endswith("cannot_inspect") for f in findings) else 2


def peer_detection(peers: list[str], venv: Path | None, work: Path) -> None:
    tools = ["picklescan", "modelscan", "fickling"] if venv else []
    print(f"{'corpus':12} {'tool':11} {'malicious blocked/passed/error':>31} {'benign passed/blocked/error':>28} "
          f"{'junk: not a model file / cannot inspect (encrypted) / other'}")
    for spec in peers:
        peer, _, snapshot = spec.partition("=")
        scratch = work / peer / "samples"
        scratch.mkdir(parents=True)
        cases = rebuild_peer(peer, Path(snapshot), scratch, venv)
        missed: list[str] = []
        for tool in ["mlgate", *tools]:
            tally = {True: [0, 0, 0], False: [0, 0, 0]}
            junk = [0, 0, 0]
            for path, malicious in cases.items():
                if tool == "mlgate":
                    try:
                        findings = scan_path(path)
                        verdict = "block" if findings else "pass"
                    except Exception:  # noqa: BLE001 - exit 2 in the CLI: counted as an error
                        findings, verdict = [], "error"
                else:
                    verdict = _run_tool(tool, venv, path, work)
                if malicious is None:
                    if tool == "mlgate":
                        junk[_junk_bucket(verdict, findings)] += 1
                    continue
                tally[malicious][{"block": 0, "pass": 1, "error": 2}[verdict]] += 1
                if tool == "mlgate" and (verdict == "block") != malicious:
                    if not malicious and all(f.id.endswith("cannot_inspect") for f in findings):
                        missed.append(f"benign but cannot be inspected (encrypted): {path.name}")
                        continue
                    missed.append(f"{'MISSED' if malicious else 'FALSE-BLOCK'} {path.name}")
            benign = tally[False]
            print(f"{peer:12} {tool:11} {'/'.join(map(str, tally[True])):>31} "
                  f"{'/'.join(map(str, (benign[1], benign[0], benign[2]))):>28} "
                  f"{'/'.join(map(str, junk)) if tool == 'mlgate' else ''}")
        for line in missed:
            print(f"    mlgate {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 20 MB pickle instead of 200 MB")
    parser.add_argument("--bench-venv", type=Path,
                        default=Path(os.environ.get("MLGATE_BENCH_VENV", ROOT / ".venv-bench")))
    parser.add_argument("--baseline", default=BASELINE, help="commit whose scanner the throughput is compared with")
    parser.add_argument("--throughput-only", action="store_true", help="skip the detection table")
    parser.add_argument("--repeats", type=int, default=5, help="timings per tool and pickle (best is kept)")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=SNAPSHOT",
                        help="picklescan|modelscan|fickling=<git dir of a snapshot>: score its test samples")
    args = parser.parse_args()
    venv = args.bench_venv if (args.bench_venv / "bin" / "picklescan").exists() else None
    if venv is None:
        print(f"reference skipped: no modelscan/picklescan/fickling venv at {args.bench_venv}")
    with tempfile.TemporaryDirectory(prefix="artifact-bench-") as tmp:
        if args.peer:
            peer_detection(args.peer, venv, Path(tmp))
            return
        if not args.throughput_only:
            detection(Path(tmp) / "corpus", venv)
        baseline = checkout_src(args.baseline, Path(tmp) / "baseline") if args.baseline else None
        throughput(Path(tmp), venv, 20 if args.quick else 200, baseline, 2 if args.quick else args.repeats)


if __name__ == "__main__":
    main()
