"""The gates, one package per stage of the seed's pipeline, one module per gate or tool.

Pure Python: nothing here imports Airflow (an import-linter contract enforces it). Gates may use ``mlgate.trust``
and ``mlgate.core``; neither may import a gate.
"""
