"""The human summary of a GateResult (CLI stderr, task logs): status, subject, metrics, top failures."""

from __future__ import annotations

from mlgate.core.results import GateResult


def format_summary(result: GateResult, limit: int = 10) -> str:
    scalars = {k: v for k, v in result.metrics.items() if isinstance(v, int | float | str | bool)}
    rows = [("gate", result.gate), ("status", str(result.status).upper()),
            ("subject", f"{result.subject.kind} {result.subject.uri}"),
            ("digest", result.subject.digest), ("tool", f"{result.tool.name} {result.tool.version}")]
    rows += [(name, str(value)) for name, value in scalars.items()]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    if result.findings:
        lines.append(f"findings ({len(result.findings)}):")
        lines += [f"  {line}" for line in result.top_failures(limit)]
    return "\n".join(lines)
