"""Cost of signing a GateResult where it is produced, and of verifying it at promotion (issue 13: < 5 ms/gate).

Signs a realistic result (a dozen metrics, 20 findings) with an ECDSA P-256 key the way a gate task does
(the signer loaded once per task), then runs promotion's verification rules over the envelope. Prints the
median and p95 per gate, and the one-off cost of loading the key.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow
from mlgate.trust.attestation import generate_key, public_key_pem, signer_from_file
from mlgate.trust.gate_evidence import sign_result, verify_gate_result

BUDGET_MS = 5.0


def sample_result() -> GateResult:
    findings = tuple(Finding(f"data.pii.email.{i}", Severity.HIGH, f"email in column c{i}", f"row {i}")
                     for i in range(20))
    return GateResult("data.pii", Status.BLOCKED, Subject("dataset", "/data/loans.csv", "sha256:" + "a" * 64),
                      "sha256:" + "b" * 64, ToolInfo("mlgate", "0.1"), utcnow(), utcnow(),
                      metrics={f"m{i}": i / 7 for i in range(12)}, thresholds={"max": 0}, findings=findings)


def timed_ms(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        private, _ = generate_key(Path(tmp) / "bench.pem")
        load = timed_ms(lambda: signer_from_file(private), 20)
        signer = signer_from_file(private)
    result, trusted = sample_result(), (public_key_pem(signer),)
    run_id = "0" * 32  # the MLflow run the result is signed for (ADR 0013, verify_run)
    sign = timed_ms(lambda: sign_result(result, signer, run_id), args.repeats)
    envelope = sign_result(result, signer, run_id)
    expected = {"dataset": result.subject.digest}
    verify = timed_ms(lambda: verify_gate_result("data.pii", envelope, trusted, expected, run_id), args.repeats)
    for name, values in (("load key (once per task)", load), ("sign one result", sign),
                         ("verify one result", verify)):
        p95 = statistics.quantiles(values, n=20)[-1]
        print(f"{name:<26} median {statistics.median(values):7.3f} ms   p95 {p95:7.3f} ms")
    verdict = "within" if statistics.median(sign) < BUDGET_MS else "OVER"
    print(f"signing: {verdict} the {BUDGET_MS} ms per gate budget; envelope {len(envelope)} bytes")


if __name__ == "__main__":
    main()
