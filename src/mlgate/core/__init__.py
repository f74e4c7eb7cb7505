"""The contracts every gate shares: results, policy (+ exceptions), errors, runner, evidence, digests.

``mlgate.core`` imports nothing of mlgate above it and never Airflow (an import-linter contract enforces it), so
the same gates run from the ``mlgate`` CLI in any CI system.
"""
