"""The prediction-log and feedback tables: names, columns, DDL and the table-name rule.

The model server writes these tables and the monitor, the A/B analysis and the trace read them;
this module is the contract both sides share, so it imports nothing else of ours.

* ``mlops_prediction_log``: one row per scored request and arm. ``arm`` is ``champion`` or
  ``challenger`` for the model that answered, ``shadow`` for a challenger that scored a request the
  champion answered. ``(request_id, arm)`` is the primary key, so a retried batch never duplicates
  rows, and a partial unique index keeps one served answer (champion or challenger) per request id,
  so a label joins only the arm that answered. ``score`` is the positive-class probability of a
  binary classifier (the value for a regressor), the number an AUC or a calibration check needs;
  ``probability`` has every class.
  ``features`` is ``json`` (the request's own text when possible), not ``jsonb``: it is written at
  request rate and read rarely, and ``json`` costs Postgres half the CPU per row (cast to ``jsonb``
  to query inside it). A BRIN index on ``ts`` serves time windows at almost no write cost.
* ``mlops_feedback``: the ground-truth label of a request, upserted by ``request_id``.

Join them on ``request_id`` (``arm <> 'shadow'`` for what users were served).
"""

from __future__ import annotations

import re

PREDICTION_LOG_TABLE = "mlops_prediction_log"
FEEDBACK_TABLE = "mlops_feedback"
ARMS = ("champion", "challenger", "shadow")
PREDICTION_LOG_COLUMNS = (
    "request_id",
    "ts",
    "model_name",
    "model_version",
    "arm",
    "request_key",
    "features",
    "prediction",
    "probability",
    "score",
    "latency_ms",
)
TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?")
"""A plain Postgres identifier, optionally schema-qualified: safe to put in SQL text."""


def is_table_name(name: str) -> bool:
    """Whether ``name`` follows :data:`TABLE_NAME`."""
    return TABLE_NAME.fullmatch(name) is not None  # "$" would let a trailing newline in


def check_table_name(name: str) -> str:
    """Return ``name`` if it is a plain (optionally schema-qualified) identifier, else raise ValueError."""
    if not is_table_name(name):
        raise ValueError(f"table name: expected an identifier such as 'public.{PREDICTION_LOG_TABLE}', found {name!r}")
    return name


def prediction_log_ddl(table: str = PREDICTION_LOG_TABLE) -> str:
    """``CREATE TABLE IF NOT EXISTS`` (plus index) for a prediction log named ``table``."""
    base = check_table_name(table).rsplit(".", 1)[-1]
    return f"""CREATE TABLE IF NOT EXISTS {table} (
    request_id    text NOT NULL,
    ts            timestamptz NOT NULL,
    model_name    text NOT NULL,
    model_version text NOT NULL,
    arm           text NOT NULL CHECK (arm IN ('champion', 'challenger', 'shadow')),
    request_key   text,
    features      json NOT NULL,
    prediction    jsonb,
    probability   jsonb,
    score         double precision,
    latency_ms    double precision NOT NULL,
    PRIMARY KEY (request_id, arm)
);
CREATE INDEX IF NOT EXISTS {base}_ts_brin ON {table} USING brin (ts);
DO $$ BEGIN
    CREATE UNIQUE INDEX IF NOT EXISTS {base}_served_once ON {table} (request_id) WHERE arm <> 'shadow';
EXCEPTION WHEN unique_violation THEN
    RAISE WARNING '{table} holds request ids served on two arms: no one-answer-per-id index';
END $$;
"""


def feedback_ddl(table: str = FEEDBACK_TABLE) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for a feedback (ground truth) table named ``table``."""
    check_table_name(table)
    return f"""CREATE TABLE IF NOT EXISTS {table} (
    request_id text PRIMARY KEY,
    label      jsonb NOT NULL,
    ts         timestamptz NOT NULL DEFAULT now()
);
"""


PREDICTION_LOG_DDL = prediction_log_ddl()
FEEDBACK_DDL = feedback_ddl()


def feedback_upsert_sql(table: str = FEEDBACK_TABLE) -> str:
    """Upsert feedback rows ``(request_id, label_json, ts)``; returns the ids whose stored label changed.

    Every part of the statement sees the table as it was before it, so ``changed`` compares each
    new label with the one it replaces (a label sent again unchanged is not a change).
    """
    check_table_name(table)
    return (
        "WITH new (request_id, label, ts) AS (VALUES %s), "
        f"changed AS (SELECT f.request_id FROM {table} f JOIN new n USING (request_id) "
        "WHERE f.label IS DISTINCT FROM n.label::jsonb), "
        f"upsert AS (INSERT INTO {table} (request_id, label, ts) SELECT request_id, label::jsonb, ts FROM new "
        "ON CONFLICT (request_id) DO UPDATE SET label = EXCLUDED.label, ts = EXCLUDED.ts) "
        "SELECT request_id FROM changed"
    )
