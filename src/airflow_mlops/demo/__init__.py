"""The embedded demo: synthetic data and a headless end-to-end run on SQLite Airflow and MLflow."""
