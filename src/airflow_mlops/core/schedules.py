"""Schedules a spec may give: a five-field cron expression or one of Airflow's cron presets."""

from __future__ import annotations

# Airflow's cron presets (airflow.utils.dates.cron_presets), which CronTriggerTimetable expands.
PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}
EXPECTED = f"a cron expression of five fields (e.g. '0 3 * * *'), one of {', '.join(PRESETS)}, or null (unscheduled)"


def check_schedule(value: str | None) -> str | None:
    """Return ``value`` if Airflow can schedule it; raise :class:`ValueError` saying what was expected.

    Parsed with croniter, the parser Airflow's cron timetables use, so a schedule accepted here
    fires; ``None`` leaves the DAG unscheduled.
    """
    if value is None or value in PRESETS:
        return value
    from croniter import croniter

    if not isinstance(value, str) or len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError(f"expected {EXPECTED}, found {value!r}")
    try:
        croniter(value).get_next(float)
    except Exception:  # croniter raises CroniterBadDateError (or others) when no date matches
        raise ValueError(f"expected a schedule that fires, found {value!r} (no date matches it)") from None
    return value


def longest_gap_seconds(schedule: str | None, *, runs: int = 400) -> float | None:
    """The longest time between two runs of ``schedule`` over its next ``runs`` runs; ``None`` when unscheduled.

    A weekday cron has a gap of a weekend, a quarterly one of about 92 days: what "late" means for it.
    """
    if schedule is None:
        return None
    from datetime import UTC, datetime

    from croniter import croniter

    times = croniter(PRESETS.get(schedule, schedule), datetime(2026, 1, 1, tzinfo=UTC))
    fires = [float(times.get_next(float)) for _ in range(runs + 1)]
    return max(later - earlier for earlier, later in zip(fires, fires[1:], strict=False))
