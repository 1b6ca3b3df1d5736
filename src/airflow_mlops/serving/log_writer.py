"""The prediction-log writer process: ``python -m airflow_mlops.serving.log_writer TABLE``.

Started by :class:`airflow_mlops.serving.log_shipper.PredictionLogWriter`; reads length-prefixed
pickled batches on stdin (``("rows", rows)``, or ``("payloads", [spool payload, ...])`` from the
durable log), COPYs them into ``TABLE`` (DSN from ``MLOPS_LOG_WRITER_DSN``) and answers each with
``("ok", WriteResult fields)`` or ``("error", message)`` on stdout. It exits on ``("stop",)`` or when
stdin closes, and ignores SIGINT/SIGTERM so a signal to the whole process group cannot cut the
server's final drain short.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from dataclasses import astuple

from airflow_mlops.core.log_tables import check_table_name, prediction_log_ddl
from airflow_mlops.serving.durable_log import decode_rows
from airflow_mlops.serving.log_shipper import DSN_ENV, read_frame, write_frame, write_rows
from airflow_mlops.serving.pg_connection import PgConnection


def main(argv: list[str] | None = None) -> int:
    """Serve batches until told to stop."""
    args = sys.argv[1:] if argv is None else argv
    table = check_table_name(args[0])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    connection = PgConnection(os.environ.pop(DSN_ENV), prediction_log_ddl(table))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        frame = read_frame(stdin)
        if frame is None:
            break
        message = pickle.loads(frame)
        if message[0] == "stop":
            break
        rows = message[1] if message[0] == "rows" else [r for p in message[1] for r in decode_rows(p)]
        try:
            result = write_rows(connection, table, rows)
            answer: tuple[str, object] = ("ok", astuple(result))
        except Exception as err:
            answer = ("error", f"{type(err).__name__}: {str(err).strip()[:300]}")
        write_frame(stdout, pickle.dumps(answer))
    connection.reset()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
