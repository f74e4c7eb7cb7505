"""Pure-Python core of mlgate: results, policy, evidence and one module per gate family.

Nothing under ``mlgate.core`` imports Airflow (a test enforces it), so the same gates run from the
``mlgate`` CLI in any CI system.
"""
