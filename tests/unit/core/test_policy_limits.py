"""Attack 6: reading a policy costs little whatever it holds (size cap, no YAML aliases, bounded error text)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from mlgate.core.errors import PolicyError
from mlgate.core.policy import load_policy, parse_policy
from mlgate.core.safe_yaml import MAX_BYTES_ENV

pytestmark = pytest.mark.unit

LAUGHS = "version: 1\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)) + \
    "promotion: {model_name: m, required_gates: *a9}\n"


def test_a_billion_laughs_policy_fails_in_a_process_with_little_memory(tmp_path):
    """Nine levels of aliases (9^10 strings if expanded) under a 1 GiB address-space limit: refused at the
    first alias, before any object is built. Without the alias refusal pydantic's error text expands it."""
    path = tmp_path / "laughs.yaml"
    path.write_text(LAUGHS)
    script = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from mlgate.core.policy import load_policy
        try:
            load_policy({str(path)!r})
        except Exception as exc:
            print(type(exc).__name__, exc)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("PolicyError") and "YAML aliases (*name) are not allowed" in done.stdout
    assert len(done.stdout) < 1000


def test_error_text_never_expands_a_shared_structure():
    """The second defence: an input built of shared references (as aliases would build it) is described
    in a bounded repr, not expanded and then cut."""
    laughs: object = ["lol"] * 9
    for _ in range(9):
        laughs = [laughs] * 9
    with pytest.raises(PolicyError) as caught:
        parse_policy({"version": 1, "promotion": {"model_name": "m", "required_gates": laughs}})
    assert len(str(caught.value)) < 20_000 and "required_gates" in str(caught.value)


def test_a_policy_over_the_size_cap_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    path = tmp_path / "big.yaml"
    path.write_text("version: 1\n" + "#" * 2000 + "\n: : not yaml [")
    monkeypatch.setenv(MAX_BYTES_ENV, "1000")
    with pytest.raises(PolicyError, match=r"big.yaml: the policy file is 2\d\d\d bytes, over the limit of 1000"):
        load_policy(path)
    monkeypatch.delenv(MAX_BYTES_ENV)
    with pytest.raises(PolicyError, match="not valid YAML"):  # under the default 1 MB it is parsed
        load_policy(path)
