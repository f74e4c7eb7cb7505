"""``code.static``: bandit over a source tree; issues at or above a severity AND a confidence block.

Bandit runs as a subprocess of this interpreter (``python -m bandit``) with an empty ``--ini``, so a
``.bandit`` file inside the scanned tree cannot switch tests off. Bandit's JSON quotes source lines
(``code``) and some issue texts quote literals (B105: "Possible hardcoded password: '<the password>'"):
neither reaches a finding or an artifact; issue texts are cut at their first quote.

Baseline (bandit's ``-b`` is not used: it matches on the issue text, which for B105-B107 is the secret
itself): a JSON file with a ``results`` list of ``{test_id, filename}`` records, i.e. the JSON artifact
of an earlier run, or ``bandit -r . -f json`` run from the tree's root. Matching ignores line numbers,
per (test_id, filename) with counts: a file holding more issues of a test than its baseline did has
all of them block, as bandit's own baseline does, because which one is new cannot be told apart.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlgate.core.digests import code_digest
from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, error_result, utcnow
from mlgate.core.subprocess_tool import run_tool

GATE = "code.static"
LEVELS = ("low", "medium", "high")
Level = Literal["low", "medium", "high"]
BANDIT_INI = Path(__file__).resolve().parents[2] / "checks" / "bandit.ini"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {"low": "note", "medium": "warning", "high": "error"}
DEFAULT_EXCLUDE = ("*/.git/*", "*/.venv/*", "*/venv/*", "*/node_modules/*", "*/__pycache__/*", "*/.tox/*",
                   "*/.eggs/*")


class StaticPolicy(BaseModel):
    """The policy section of ``code.static``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_severity: Level = "medium"
    min_confidence: Level = "medium"
    baseline: str | None = Field(default=None, description="baseline JSON; relative to the scanned tree")
    exclude: tuple[str, ...] = Field(default=DEFAULT_EXCLUDE, description="bandit -x path globs")
    timeout_s: int = Field(default=600, gt=0)


@dataclass(frozen=True)
class BanditIssue:
    """One bandit result without its code: ``filename`` is relative to the scanned tree."""

    test_id: str
    test_name: str
    filename: str
    line: int
    column: int
    severity: Level
    confidence: Level
    text: str
    cwe: int | None
    more_info: str

    @property
    def key(self) -> tuple[str, str]:
        return self.test_id, self.filename

    def record(self) -> dict[str, Any]:
        """Bandit's own key names, so the artifact can serve as a baseline."""
        return {"test_id": self.test_id, "test_name": self.test_name, "filename": self.filename,
                "line_number": self.line, "col_offset": self.column, "issue_severity": self.severity.upper(),
                "issue_confidence": self.confidence.upper(), "issue_text": self.text,
                "issue_cwe": self.cwe, "more_info": self.more_info}

    def finding(self) -> Finding:
        return Finding(self.test_id, Severity(self.severity),
                       f"{self.test_name}: {self.text} (confidence {self.confidence})",
                       f"{self.filename}:{self.line}")


@dataclass(frozen=True)
class BanditReport:
    issues: list[BanditIssue]
    errors: list[tuple[str, str]]  # (relative filename, reason) of files bandit could not scan
    loc: int
    nosec: int


def safe_text(text: str) -> str:
    """An issue text up to its first quote: what follows a quote can be a literal from the code."""
    cut = min((i for i in (text.find("'"), text.find('"')) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut].rstrip(" :") + " (value withheld)"


def bandit_argv(path: Path, policy: StaticPolicy) -> list[str]:
    argv = [sys.executable, "-m", "bandit", "-r", str(path), "-f", "json", "-q", "--exit-zero",
            "--ini", str(BANDIT_INI)]
    return argv + (["-x", ",".join(policy.exclude)] if policy.exclude else [])


def bandit_version() -> str:
    try:
        return metadata.version("bandit")
    except metadata.PackageNotFoundError:
        raise ToolError(f"bandit is not installed in {sys.executable}'s environment") from None


def _relative(name: str, base: Path) -> str:
    try:
        return Path(name).relative_to(base).as_posix()
    except ValueError:
        return PurePosixPath(name).as_posix()


def _level(value: Any) -> Level:
    level = str(value).lower()
    if level not in LEVELS:
        raise ValueError(f"unknown bandit level {value!r}")
    return level  # type: ignore[return-value]


def parse_bandit(json_text: str, root: Path) -> BanditReport:
    """The issues, unscanned files and totals of a bandit JSON report; anything unexpected is a ToolError."""
    base = root.parent if root.is_file() else root
    try:
        report = json.loads(json_text)
        issues = [BanditIssue(
            r["test_id"], r["test_name"], _relative(r["filename"], base), int(r["line_number"]),
            int(r.get("col_offset", 0)), _level(r["issue_severity"]), _level(r["issue_confidence"]),
            safe_text(r["issue_text"]), (r.get("issue_cwe") or {}).get("id"), r.get("more_info", ""))
            for r in report["results"]]
        errors = [(_relative(e["filename"], base), str(e["reason"])[:200]) for e in report["errors"]]
        totals = report["metrics"]["_totals"]
        return BanditReport(issues, errors, int(totals["loc"]), int(totals["nosec"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ToolError(f"bandit printed malformed output: {type(exc).__name__}: {str(exc)[:200]}") from None


def load_baseline(path: Path) -> Counter[tuple[str, str]]:
    """(test_id, filename) counts of a baseline: mlgate's JSON artifact or a bandit JSON report."""
    try:
        records = json.loads(path.read_text())["results"]
        return Counter((r["test_id"], PurePosixPath(r["filename"]).as_posix()) for r in records)
    except OSError as exc:
        raise GateInputError(f"{path}: cannot read the bandit baseline: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise GateInputError(f"{path}: not a bandit baseline (a JSON 'results' list of test_id and "
                             f"filename): {type(exc).__name__}: {exc}") from None


def baselined(issues: Sequence[BanditIssue], baseline: Counter[tuple[str, str]]) -> list[bool]:
    """Per issue: is it covered? A (test, file) group is covered only if the baseline held as many."""
    counts = Counter(issue.key for issue in issues)
    return [counts[issue.key] <= baseline[issue.key] for issue in issues]


def is_blocking(issue: BanditIssue, policy: StaticPolicy) -> bool:
    return (LEVELS.index(issue.severity) >= LEVELS.index(policy.min_severity)
            and LEVELS.index(issue.confidence) >= LEVELS.index(policy.min_confidence))


def to_sarif(report: BanditReport, covered: Sequence[bool], blocks: Sequence[bool], version: str) -> dict:
    """SARIF 2.1.0 of the parsed results (bandit's own SARIF embeds code snippets, so it is not used)."""
    rules = {i.test_id: {"id": i.test_id, "name": i.test_name, "helpUri": i.more_info,
                         "properties": {"tags": [f"CWE-{i.cwe}"] if i.cwe else []}}
             for i in sorted(report.issues, key=lambda i: i.test_id)}
    index = {rule_id: n for n, rule_id in enumerate(rules)}

    def location(filename: str, line: int | None = None, column: int = 0) -> dict:
        physical: dict[str, Any] = {"artifactLocation": {"uri": filename, "uriBaseId": "SRCROOT"}}
        if line:
            physical["region"] = {"startLine": line, "startColumn": column + 1}
        return {"physicalLocation": physical}

    results = []
    for issue, is_covered, is_blocked in zip(report.issues, covered, blocks, strict=True):
        result = {"ruleId": issue.test_id, "ruleIndex": index[issue.test_id],
                  "level": SARIF_LEVEL[issue.severity], "message": {"text": issue.text},
                  "locations": [location(issue.filename, issue.line, issue.column)],
                  "properties": {"issue_severity": issue.severity.upper(),
                                 "issue_confidence": issue.confidence.upper(), "blocking": is_blocked}}
        if is_covered:
            result["suppressions"] = [{"kind": "external", "justification": "in the code.static baseline"}]
        results.append(result)
    notifications = [{"level": "error", "message": {"text": f"not scanned: {reason}"},
                      "locations": [location(filename)]} for filename, reason in report.errors]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "bandit", "version": version, "informationUri": "https://bandit.readthedocs.io",
                            "rules": list(rules.values())}},
        "invocations": [{"executionSuccessful": not report.errors,
                         "toolExecutionNotifications": notifications}],
        "results": results}]}


def _write_artifacts(out_dir: Path, report: BanditReport, covered: Sequence[bool], blocks: Sequence[bool],
                     version: str) -> tuple[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    records = [{**issue.record(), "baselined": c, "blocking": b}
               for issue, c, b in zip(report.issues, covered, blocks, strict=True)]
    report_path, sarif_path = out_dir / "bandit.json", out_dir / "bandit.sarif"
    report_path.write_text(json.dumps({
        "tool": {"name": "bandit", "version": version}, "results": records,
        "errors": [{"filename": f, "reason": r} for f, r in report.errors],
        "totals": {"loc": report.loc, "nosec": report.nosec}}, indent=2) + "\n")
    sarif_path.write_text(json.dumps(to_sarif(report, covered, blocks, version), indent=2) + "\n")
    return str(report_path), str(sarif_path)


def check_static(path: str | Path, config: StaticPolicy, policy_digest: str,
                 out_dir: str | Path) -> GateResult:
    """Run bandit over ``path``; files bandit could not parse block too (they were not checked)."""
    started, clock, root = utcnow(), time.perf_counter(), Path(path)
    if not root.exists():
        raise GateInputError(f"{root}: no such file or directory to scan")
    try:
        subject = Subject("code", str(root), code_digest(root))
    except ValueError as exc:  # e.g. a symlink in the tree
        raise GateInputError(f"{root}: cannot digest the scanned tree: {exc}") from None
    baseline = Counter[tuple[str, str]]()
    if config.baseline:
        baseline_path = Path(config.baseline)
        baseline = load_baseline(baseline_path if baseline_path.is_absolute() else
                                 (root if root.is_dir() else root.parent) / baseline_path)
    tool = ToolInfo("bandit", "unknown")
    try:
        tool = ToolInfo("bandit", bandit_version())
        report = parse_bandit(run_tool(bandit_argv(root, config), config.timeout_s, name="bandit"), root)
    except ToolError as exc:
        return error_result(GATE, subject, policy_digest, tool, started, exc)
    covered = baselined(report.issues, baseline)
    blocks = [is_blocking(i, config) and not c for i, c in zip(report.issues, covered, strict=True)]
    artifacts = _write_artifacts(Path(out_dir), report, covered, blocks, tool.version)
    unscanned = [Finding(f"{GATE}.unscanned", Severity.HIGH, f"bandit could not scan the file: {why}", name)
                 for name, why in report.errors]
    hits = sorted((i.finding() for i, b in zip(report.issues, blocks, strict=True) if b),
                  key=lambda f: (-f.severity.rank, f.location, f.id))
    return GateResult(
        gate=GATE, status=Status.BLOCKED if hits or unscanned else Status.PASSED, subject=subject,
        policy_digest=policy_digest, tool=tool, started_at=started, finished_at=utcnow(),
        metrics={"issues": len(report.issues), "blocking": len(hits), "baselined": sum(covered),
                 "unscanned_files": len(unscanned), "loc": report.loc, "nosec": report.nosec,
                 **{f"severity_{level}": sum(i.severity == level for i in report.issues) for level in LEVELS},
                 "seconds": round(time.perf_counter() - clock, 3)},
        thresholds={"min_severity": config.min_severity, "min_confidence": config.min_confidence,
                    "baseline": config.baseline, "exclude": list(config.exclude)},
        findings=(*unscanned, *hits), artifacts=artifacts,
    )
