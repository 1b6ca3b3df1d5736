"""Any body the JSON parser accepts gets a 2xx or 4xx answer, and what is logged stays usable as jsonb.

Hypothesis sends JSON values (including the NaN and Infinity literals Python's parser accepts,
NUL characters, unpaired surrogates such as ``"\\ud800"``, deep nesting and huge numbers) to
``/predict``, ``/predict/batch`` and ``/feedback`` of the in-process app, both arbitrary and shaped
like real requests. Every prediction answered is in the log, and the log reads as jsonb.
"""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.serving import DSN, FEATURES, complete_rows, config_for, serving

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_mlops.serving.config import ServingConfig
    from tests.support.serving import Store

# codec="utf-8" leaves out the surrogates (U+D800 to U+DFFF), which JSON can still carry as
# "\ud800" escapes (json.dumps writes them): they come from their own strategy and list
SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
TEXT = st.text(alphabet=st.characters(codec="utf-8") | SURROGATE, max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
    | st.sampled_from(["basic", "standard", "premium", "eu", "us", "apac", "\x00", "", "1e999"])
    | st.sampled_from([chr(0xD800), "eu" + chr(0xDFFF), chr(0xDC00) + chr(0xD83D), "\U0001f600"])
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
FEATURE_ROWS = st.fixed_dictionaries({}, optional=dict.fromkeys(FEATURES, JSON)) | st.dictionaries(
    st.sampled_from([*FEATURES, "extra"]), SCALARS
)
SHAPED = st.one_of(
    st.fixed_dictionaries({"features": FEATURE_ROWS}, optional={"key": JSON}),
    st.fixed_dictionaries(
        {"rows": st.lists(FEATURE_ROWS | st.fixed_dictionaries({"features": FEATURE_ROWS}), max_size=4)}
    ),
    st.fixed_dictionaries({"request_id": JSON, "label": JSON}),
    st.fixed_dictionaries({"items": st.lists(st.fixed_dictionaries({"request_id": JSON, "label": JSON}), max_size=3)}),
)
ENDPOINTS = ("/predict", "/predict/batch", "/feedback")


@contextmanager
def app_in_thread(config: ServingConfig) -> Iterator[Callable[[str, bytes], tuple[int, Any]]]:
    """The app with its lifespan on a loop of its own thread; yields ``post(path, body) -> (status, JSON)``."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ready: asyncio.Future[Any] = asyncio.run_coroutine_threadsafe(_enter(config), loop)  # type: ignore[assignment]
    context, client = ready.result(timeout=120)

    def post(path: str, body: bytes) -> tuple[int, Any]:
        call = client.post(path, content=body, headers={"Content-Type": "application/json"})
        response = asyncio.run_coroutine_threadsafe(call, loop).result(timeout=60)
        return response.status_code, response.json()

    try:
        yield post
    finally:
        asyncio.run_coroutine_threadsafe(context.__aexit__(None, None, None), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


async def _enter(config: ServingConfig) -> tuple[Any, Any]:
    context = serving(config)
    client, _ = await context.__aenter__()
    return context, client


def test_any_json_body_gets_a_2xx_or_4xx(
    serving_store: Store, register: Callable[..., str], tables: tuple[str, str], pg_conn: Any
) -> None:
    """No JSON body makes the server answer 5xx or drop the connection; every answer is logged, as jsonb."""
    name = register(champion=0, challenger=1)
    log_table, feedback_table = tables
    config = config_for(
        serving_store,
        name,
        challenger_share=0.5,
        postgres_dsn=DSN,
        log_table=log_table,
        feedback_table=feedback_table,
        log_flush_ms=50,
    )
    seen: dict[int, int] = {}
    answered = 0  # predictions answered 200: each must have its log row
    near_valid = st.tuples(
        st.sampled_from(complete_rows(serving_store.frame, 20)), st.sampled_from(FEATURES), SCALARS, st.booleans()
    ).map(lambda t: {**t[0], t[1]: t[2]} if t[3] else t[0])
    requests = st.fixed_dictionaries({"features": near_valid}, optional={"key": SCALARS}) | st.fixed_dictionaries(
        {"rows": st.lists(near_valid, min_size=1, max_size=4)}
    )
    with app_in_thread(config) as post:

        @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(body=JSON | SHAPED | requests, path=st.sampled_from(ENDPOINTS))
        def answers_without_server_error(body: Any, path: str) -> None:
            nonlocal answered
            status, payload = post(path, json.dumps(body, allow_nan=True).encode())
            seen[status] = seen.get(status, 0) + 1
            assert 200 <= status < 500, (path, body, status)
            if status == 200 and path != "/feedback":
                answered += len(payload["predictions"]) if path == "/predict/batch" else 1

        answers_without_server_error()
    assert 200 in seen, seen  # the shaped bodies reached the models, not only the validators
    with pg_conn.cursor() as cur:
        cur.execute(
            f"SELECT count(*), count(features::jsonb), count(prediction), count(probability::jsonb ->> 0) "
            f"FROM {log_table}"
        )
        rows, features, predictions, _ = cur.fetchone()
        cur.execute("SELECT to_regclass(%s)", (feedback_table,))
        if cur.fetchone()[0]:
            cur.execute(f"SELECT count(to_jsonb(label)) FROM {feedback_table}")
    print(f"answers by status {dict(sorted(seen.items()))}; {rows} logged rows, all readable as jsonb")
    assert rows > 0
    assert rows == features == predictions == answered  # the shipper drops a row Postgres cannot store
