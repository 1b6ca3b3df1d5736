"""The simulated world of the closed-loop demo: customers who send requests and later reveal labels.

The world keeps a clock: every batch of customers it produces is stamped between the previous
batch and now, so a training run's ``as_of`` (its start) always covers what has already happened.
Labelled customers land in the source table (the warehouse the pipeline trains from); the same
customers' requests go to the model server, and their labels come back through ``/feedback``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.snapshot import utc_now
from demo.data import customers
from demo.seed import append_customers

if TYPE_CHECKING:
    import pandas as pd

FEATURES = ["tenure_months", "monthly_usage", "support_calls", "monthly_charge", "plan", "region"]
TARGET = "churned"


@dataclass
class World:
    """Customers before and after a drift, sent to a model server and written to a source table.

    :param dsn: libpq DSN of the database holding ``table``.
    :param table: the pipeline's source table.
    """

    dsn: str
    table: str = "public.customers"
    drift: float = 0.0
    _seed: int = 1000
    _clock: datetime = field(default_factory=utc_now)
    _next_id: int = 1

    def batch(self, rows: int, *, history: bool = False) -> pd.DataFrame:
        """``rows`` new customers in the world's current state (``history``: stamped in early 2026)."""
        self._seed += 1
        if history:
            frame = customers(rows, seed=self._seed, drift=self.drift)
        else:
            now = max(utc_now() - timedelta(seconds=1), self._clock)  # never before the previous batch
            frame = customers(rows, seed=self._seed, start=self._clock, end=now, drift=self.drift)
            self._clock = now
        frame["customer_id"] = range(self._next_id, self._next_id + rows)
        self._next_id += rows
        return frame

    def resume_now(self) -> None:
        """Stamp the next batch from now on: time passed without new customers (e.g. while a model trained)."""
        self._clock = max(self._clock, utc_now())

    def land(self, frame: pd.DataFrame) -> int:
        """Append labelled customers to the source table (created on first use); returns the row count."""
        import psycopg2

        conn = psycopg2.connect(self.dsn)
        try:
            with conn:  # commits
                return append_customers(conn, frame, table=self.table)
        finally:
            conn.close()

    def remove_unlabelled(self) -> int:
        """Delete source rows without a label (the fix after a bad load); returns how many went."""
        import psycopg2
        from psycopg2 import sql

        ident = sql.Identifier(*self.table.split("."))
        with psycopg2.connect(self.dsn) as conn, conn.cursor() as cursor:
            cursor.execute(sql.SQL("DELETE FROM {} WHERE churned IS NULL").format(ident))
            return int(cursor.rowcount)


def send_requests(
    url: str, frame: pd.DataFrame, *, phase: str, feedback: bool = True, flip_labels: bool = False
) -> dict[str, Any]:
    """One ``/predict`` per customer (keyed by customer), then, if ``feedback``, its label.

    ``flip_labels`` reports the opposite of the truth (a model made to look degraded). Returns
    requests, answers per arm and served versions, and the share of correct answers per arm.
    """
    import httpx

    answers = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i, row in enumerate(frame.to_dict(orient="records")):
            body = {
                "request_id": f"{phase}-{i}",
                "key": f"customer-{row['customer_id']}",
                "features": {k: row[k] for k in FEATURES},
            }
            response = client.post("/predict", json=body)
            if response.status_code != 200:
                raise RuntimeError(f"/predict answered {response.status_code}: {response.text[:300]}")
            label = int(row[TARGET])
            answers.append({**response.json(), "label": 1 - label if flip_labels else label})
        if feedback:
            for answer in answers:
                response = client.post("/feedback", json={"request_id": answer["request_id"], "label": answer["label"]})
                if response.status_code not in (200, 202):
                    raise RuntimeError(f"/feedback answered {response.status_code}: {response.text[:300]}")
    summary: dict[str, Any] = {"requests": len(answers), "arms": {}}
    for answer in answers:
        arm = summary["arms"].setdefault(answer["arm"], {"version": answer["version"], "served": 0, "correct": 0})
        arm["served"] += 1
        arm["correct"] += int(_as_label(answer["prediction"]) == answer["label"])
    for arm in summary["arms"].values():
        arm["accuracy"] = round(arm["correct"] / arm["served"], 3)
    return summary


def _as_label(prediction: Any) -> int:
    return int(prediction[0] if isinstance(prediction, list) else prediction)
