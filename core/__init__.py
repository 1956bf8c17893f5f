"""ModelBoard core: everything that is true without a browser.

Nothing in this package imports streamlit; pages call services, services use
the domain, the metrics and the two adapters (DuckDB store, MLflow registry).
"""
