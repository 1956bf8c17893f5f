"""Adapters: the DuckDB governance store and the MLflow registry, one module each."""
