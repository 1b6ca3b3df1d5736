"""How each connection type's form looks in the Airflow UI: hidden fields, labels and placeholders.

The hooks return these from ``get_ui_field_behaviour()`` and ``provider.py`` advertises the same
dicts to Airflow, so the two cannot drift apart. The module imports nothing.
"""

from __future__ import annotations

from typing import Any

MLFLOW_FORM: dict[str, Any] = {
    "hidden_fields": ["extra"],
    "relabeling": {"host": "Tracking host or URI", "login": "Username", "schema": "Scheme (http/https)"},
    "placeholders": {
        "host": "http://mlflow:5000 or sqlite:////data/mlflow.db",
        "tracking_uri": "overrides host/scheme/port when set",
        "registry_uri": "defaults to the tracking URI",
        "ui_url": "defaults to the tracking URI when it is http(s)",
        "max_retries": "2",
        "timeout": "30",
    },
}

SERVING_FORM: dict[str, Any] = {
    "hidden_fields": ["schema", "login", "port", "extra"],
    "relabeling": {"host": "Server URLs (comma separated)", "password": "Admin token"},
    "placeholders": {"host": "http://serve-1:8000,http://serve-2:8000 or dns+http://model-server-pods:8000"},
}

EVIDENTLY_FORM: dict[str, Any] = {
    "hidden_fields": ["login", "extra"],
    "relabeling": {"host": "Evidently UI URL or workspace folder", "password": "Secret (token)"},
    "placeholders": {"host": "http://evidently:8000 or /data/evidently"},
}
