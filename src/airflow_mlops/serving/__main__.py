"""``python -m airflow_mlops.serving --model NAME --tracking-uri URI``."""

from __future__ import annotations

from airflow_mlops.serving.server import main

if __name__ == "__main__":
    raise SystemExit(main())
