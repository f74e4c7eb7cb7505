"""``data.privacy``: release a differentially private profile of a dataset only while its budget lasts.

The release is planned (calibrated, costed) without touching the data, the cost is charged to the
ledger atomically, and only then are the data read. A release that would take the dataset past its
budget is blocked and releases nothing. A release that fails after the charge keeps the charge:
over-counting is safe, under-counting is not.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlgate.core.errors import GateInputError
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow
from mlgate.gates.data.dp_release import DPProfile, ReleaseSpec, opendp_version, plan_release, release, validate_frame
from mlgate.gates.data.privacy_ledger import BudgetExceededError, Budgets, Ledger

GATE = "data.privacy"
# The released profile's content digest (``DPProfile.digest``), signed with the result: monitoring accepts a
# reference file as the served model's training reference only when its digest is this one (ADR 0060).
PROFILE_METRIC = "profile_digest"
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


def released_folder(profile_path: str | Path) -> Path:
    """The folder beside ``profile_path`` where every release is kept under its digest (ADR 0065)."""
    return Path(profile_path).parent / "released"


def released_copy(profile_path: str | Path, digest: str) -> Path | None:
    """Where a release with ``digest`` is kept beside ``profile_path`` for as long as a version may serve on
    it: ``<folder>/released/<hex>.json``. ``profile_path`` holds the newest release only; a retraining that
    rewrites it before its model is promoted (or never is) would leave the served version's monitoring
    without its attested reference (ADR 0065). None for a digest of another form (no path is built from it)."""
    match = _DIGEST.fullmatch(digest)
    return released_folder(profile_path) / f"{match.group(1)}.json" if match else None


class PrivacyPolicy(BaseModel):
    """Policy section ``gates.data.privacy``: lifetime budgets per dataset (shared with DP-SGD training) and
    what one release publishes (a policy whose data is only trained on privately may declare none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    budgets: Budgets
    release: ReleaseSpec | None = None


def check_privacy(frame, dataset_digest: str, config: PrivacyPolicy, ledger: Ledger, policy_digest: str,
                  actor: str, purpose: str = "reference profile", dataset_uri: str = ""
                  ) -> tuple[GateResult, DPProfile | None]:
    """Charge the release's (ε, δ) to ``dataset_digest`` and release the profile, or block with nothing released."""
    started = utcnow()
    if not dataset_digest:
        raise GateInputError("data.privacy needs the dataset digest the budget is kept under")
    if config.release is None:
        raise GateInputError("gates.data.privacy.release: the policy declares no release to publish")
    plan = plan_release(config.release)
    validate_frame(frame, config.release)
    space = query_space(frame, config.release)  # before the charge: a space that cannot be built charges nothing
    budget = config.budgets.for_dataset(dataset_digest)
    metrics = {"epsilon_requested": plan.epsilon, "delta_requested": plan.delta,
               "epsilon_budget": budget.epsilon, "delta_budget": budget.delta, "queries": len(plan.queries)}
    try:
        spend = ledger.spend(dataset_digest, plan.epsilon, plan.delta, purpose, actor, budget=budget,
                             release_digest=plan.digest)
    except BudgetExceededError as exc:
        status, profile, findings = Status.BLOCKED, None, (Finding(f"{GATE}.budget_exceeded", Severity.HIGH, str(exc)),)
        metrics |= {"epsilon_spent": 0.0, "delta_spent": 0.0,
                    "epsilon_total_after": exc.spent[0], "delta_total_after": exc.spent[1]}
    else:
        status, profile, findings = Status.PASSED, release(frame, plan, dataset_digest, space), ()
        metrics |= {"epsilon_spent": spend.epsilon, "delta_spent": spend.delta,
                    "epsilon_total_after": spend.epsilon_total, "delta_total_after": spend.delta_total,
                    PROFILE_METRIC: profile.digest, "query_space_rows": space["rows"] if space else 0}
    result = GateResult(
        gate=GATE, status=status, subject=Subject("dataset", dataset_uri, dataset_digest),
        policy_digest=policy_digest, tool=ToolInfo("opendp", opendp_version()), started_at=started,
        finished_at=utcnow(), metrics=metrics,
        thresholds={"epsilon_budget": budget.epsilon, "delta_budget": budget.delta}, findings=findings,
    )
    return result, profile


def query_space(frame, spec: ReleaseSpec) -> dict[str, Any] | None:
    """The numeric columns' query space when ``spec`` asks for one (ADR 0067), else None."""
    from mlgate.gates.monitor.extraction import space_record

    if not spec.query_space:
        return None
    try:
        return space_record(frame, spec.numeric_columns)
    except GateInputError as exc:
        raise GateInputError(f"{GATE}: the query space cannot be released: {exc}") from None
