"""Red team 6b (session 6): a data supplier who corrupts only the check character of each identifier keeps
it recoverable (the check is a function of the rest) and makes ``data.pii`` pass under the default policy."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from mlgate.core.results import Status
from mlgate.gates.data.pii import PiiPolicy, check_pii

pytestmark = pytest.mark.unit

DIGEST = "sha256:" + "0" * 64


def luhn_digit(body: str) -> int:
    total = 0
    for i, char in enumerate(reversed(body)):
        d = int(char) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def cpf_digits(body: list[int]) -> list[int]:
    first = sum(d * (10 - i) for i, d in enumerate(body)) * 10 % 11 % 10
    second = sum(d * (11 - i) for i, d in enumerate([*body, first])) * 10 % 11 % 10
    return [first, second]


def cards(rng: random.Random, n: int) -> list[str]:
    """Visa-shaped numbers whose last digit is the Luhn digit plus one: the true number is one step away."""
    bodies = ["4" + "".join(rng.choice("0123456789") for _ in range(14)) for _ in range(n)]
    return [body + str((luhn_digit(body) + 1) % 10) for body in bodies]


def cpfs(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        body = [rng.randrange(10) for _ in range(9)]
        wrong = [(d + 1) % 10 for d in cpf_digits(body)]
        digits = "".join(map(str, body + wrong))
        out.append(f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}")
    return out


@pytest.mark.parametrize("make", [
    pytest.param(cards, marks=pytest.mark.xfail(strict=True, reason="redteam6b: a card-shaped number failing "
                 "Luhn is not even reported at low confidence (ADR 0051 counts 1,319 of 3,951 corpus candidates "
                 "as such decoys); its true number is the one that passes, one digit away")),
    pytest.param(cpfs, marks=pytest.mark.xfail(strict=True, reason="redteam6b: a CPF with wrong check digits is "
                 "low confidence, and low_confidence: report (the default) passes it; the check digits are a "
                 "function of the other nine")),
], ids=["card-luhn-off-by-one", "cpf-check-digits-off"])
def test_identifiers_with_a_corrupted_check_character_do_not_pass_the_default_policy(tmp_path, make):
    rng = random.Random(57)
    path = tmp_path / "data.csv"
    pa_csv.write_csv(pa.table({"ref": make(rng, 40), "amount": [rng.random() for _ in range(40)]}), path)
    assert check_pii(path, PiiPolicy(), DIGEST).status is not Status.PASSED
