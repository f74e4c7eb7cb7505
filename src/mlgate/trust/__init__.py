"""What decides whether a model may be trusted: attestation, keys, promotion, audit trail, safe loading, scorecard.

Imports only ``mlgate.core``; never a gate, never Airflow (an import-linter contract enforces it).
"""
