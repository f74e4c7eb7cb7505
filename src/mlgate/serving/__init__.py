"""``mlgate serve``: a model behind authentication, rate limits, input validation and budgets (ADR 0029).

The model is loaded only through ``mlgate.load_model`` and re-checked against its signed alias state every
few seconds; each prediction is appended to the inference log the monitoring gates read. Never imports
Airflow; heavy libraries (FastAPI, mlflow, pandas) are imported where the server starts.
"""
