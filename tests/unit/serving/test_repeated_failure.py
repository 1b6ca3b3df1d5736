"""A failure the registry poller meets every 2 s is one warning, not 30 a minute; its end is one line."""

from __future__ import annotations

import logging

import pytest

from airflow_mlops.serving.repeated_failure import RepeatedFailure


def test_a_repeating_failure_warns_once_per_change_or_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = logging.getLogger("test.repeated")
    failures = RepeatedFailure(log, every=300.0, clock=lambda: now[0])
    caplog.set_level(logging.DEBUG, logger="test.repeated")
    for _ in range(3):  # 3 polls, 2 s apart
        failures.failed("reload failed, no model loaded yet: model 'churn' not found")
        now[0] += 2.0
    failures.failed("reload failed, no model loaded yet: connection refused")  # a new failure: a warning
    now[0] += 300.0
    failures.failed("reload failed, no model loaded yet: connection refused")  # 5 min on: a reminder
    failures.failed("reload failed, no model loaded yet: connection refused", always=True)  # /admin/reload
    failures.succeeded("registry read again (reload: poll)")
    failures.succeeded("registry read again (reload: poll)")  # nothing more to say
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    repeats = "; while it lasts, repeats are logged at debug level"
    assert lines == [
        ("WARNING", "reload failed, no model loaded yet: model 'churn' not found" + repeats),
        ("DEBUG", "reload failed, no model loaded yet: model 'churn' not found (2 failures in a row)"),
        ("DEBUG", "reload failed, no model loaded yet: model 'churn' not found (3 failures in a row)"),
        ("WARNING", "reload failed, no model loaded yet: connection refused (4 failures in a row)" + repeats),
        ("WARNING", "reload failed, no model loaded yet: connection refused (5 failures in a row)" + repeats),
        ("WARNING", "reload failed, no model loaded yet: connection refused (6 failures in a row)" + repeats),
        ("INFO", "registry read again (reload: poll), after 6 failure(s) in a row"),
    ]
