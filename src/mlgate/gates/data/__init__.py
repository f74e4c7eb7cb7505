"""Data ingestion and preprocessing gates: data.integrity, data.pii, data.expectations, data.privacy."""
