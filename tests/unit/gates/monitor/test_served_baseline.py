"""``monitor.confidence`` reads the served model's baseline from its verified attestation (ADR 0046), on a real
embedded MLflow store with versions promoted (signed) by ``promote``."""

from __future__ import annotations

import pytest

from mlgate.core.errors import GateInputError
from mlgate.gates.monitor.confidence import ConfidenceBaseline
from mlgate.gates.monitor.served import served_baseline
from mlgate.trust.attestation import AttestationError
from mlgate.trust.keys import keyring_from_env
from tests.helpers import validated_version

pytestmark = pytest.mark.unit

MEASURED = ConfidenceBaseline(0.6, 37, 400)


def served(client, policy, *, baseline: ConfidenceBaseline | None, signed: bool = True) -> str:
    return validated_version(client, policy, policy.promotion.model_name, baseline, promoted=signed)


def test_the_served_versions_attested_baseline_is_read(client, policy):
    served(client, policy, baseline=ConfidenceBaseline(0.6, 90, 400))
    version = served(client, policy, baseline=MEASURED)
    assert served_baseline(client, policy, keyring_from_env()) == MEASURED
    name = policy.promotion.model_name
    assert served_baseline(client, policy, keyring_from_env(), f"models:/{name}/1").low == 90
    assert served_baseline(client, policy, keyring_from_env(), f"models:/{name}/{version}") == MEASURED


def test_an_attested_model_without_a_baseline_fails_closed(client, policy):
    served(client, policy, baseline=None)
    with pytest.raises(GateInputError, match="carries no confidence baseline"):
        served_baseline(client, policy, keyring_from_env())


def test_a_baseline_outside_a_signed_attestation_is_not_read(client, policy):
    served(client, policy, baseline=MEASURED, signed=False)
    with pytest.raises(AttestationError, match="has no attestation"):
        served_baseline(client, policy, keyring_from_env())


def test_a_model_the_alias_does_not_serve_fails_closed(client, policy):
    with pytest.raises(GateInputError, match="points at no version"):
        served_baseline(client, policy, keyring_from_env())
