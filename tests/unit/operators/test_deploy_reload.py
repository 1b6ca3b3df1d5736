"""DeployModelOperator against stand-in servers: a slow reload (readiness decides), a server of another model."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.exceptions import DeploymentError, ServingError
from airflow_mlops.operators.deploy import DeployModelOperator
from tests.support.context import task_context

if TYPE_CHECKING:
    from collections.abc import Iterator


class SlowLoader(ThreadingHTTPServer):
    """A model server whose reload loads ``loads`` after ``load_seconds``, answering only then."""

    def __init__(self, load_seconds: float, loads: str | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.load_seconds, self.loads = load_seconds, loads
        self.versions = {"champion": "1"}
        self.share: float | None = None
        self.model = "churn"
        self.reloads = 0
        self.predictions = 0
        self.ready_status = 200  # 503: no champion loaded yet, as a real server answers before a first release
        self.ready_body: dict[str, Any] | None = None
        self.ready_page: bytes | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: SlowLoader

    def _answer(self, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the client gave up waiting: the point of the slow reload
            self.wfile.write(data)

    def do_GET(self) -> None:
        status = self.server.ready_status if self.path == "/ready" else 200
        if self.path == "/ready" and self.server.ready_page is not None:  # a proxy's error page, not JSON
            self.send_response(status)
            self.send_header("Content-Length", str(len(self.server.ready_page)))
            self.end_headers()
            self.wfile.write(self.server.ready_page)
            return
        body = self.server.ready_body or {"model": self.server.model, "versions": self.server.versions}
        self._answer(body, status)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path == "/admin/reload":
            self.server.reloads += 1
            time.sleep(self.server.load_seconds)
            if self.server.loads is not None:
                self.server.versions = {**self.server.versions, "challenger": self.server.loads}
            self._answer({"changed": True})
        elif self.path == "/admin/traffic":
            self.server.share = body["challenger_share"]
            self._answer({"challenger_share": self.server.share})
        else:  # /predict, forced to the challenger arm by the smoke request
            self.server.predictions += 1
            self._answer({"version": self.server.versions.get("challenger"), "prediction": 1})

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _serving(monkeypatch: pytest.MonkeyPatch, *servers: SlowLoader) -> Iterator[None]:
    """Run ``servers`` as the instances of the default serving connection (0.3 s timeout)."""
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    host = ",".join(server.url for server in servers)
    conn = {"conn_type": "mlops_serving", "host": host, "password": "t", "extra": {"timeout": 0.3}}
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SERVING_DEFAULT", json.dumps(conn))
    try:
        yield
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def slow_server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowLoader]:
    server = SlowLoader(*request.param)
    with _serving(monkeypatch, server):
        yield server


def _deploy(ready_timeout: float, registered_model: str | None = None) -> DeployModelOperator:
    return DeployModelOperator(
        task_id="start_ab_test", version="2", smoke_features={"x": 1.0}, challenger_share=0.2,
        ready_timeout=ready_timeout, deferrable=False, registered_model=registered_model,
    )  # fmt: skip


@pytest.mark.parametrize("slow_server", [(1.0, "2")], indirect=True)
def test_a_reload_slower_than_the_timeout_still_rolls_out(slow_server: SlowLoader) -> None:
    """The reload answers after 1 s against a 0.3 s timeout; the version loads, so the rollout succeeds."""
    result = _deploy(ready_timeout=10).execute(task_context())
    assert result["deployed"] == {"challenger": "2"}
    assert slow_server.share == 0.2


@pytest.mark.parametrize("slow_server", [(1.0, None)], indirect=True)
def test_a_timed_out_reload_that_never_loads_fails_on_readiness(slow_server: SlowLoader) -> None:
    """A reload that times out and never loads the version ends as a readiness failure; the split never opens."""
    with pytest.raises(DeploymentError, match=r"serving not ready with \{'challenger': '2'\} after 2"):
        _deploy(ready_timeout=2).execute(task_context())
    assert slow_server.share is None


def test_a_timed_out_instance_does_not_keep_the_others_from_reloading(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first instance's reload times out; the second is still asked, loads, and the rollout goes on."""
    slow, fast = SlowLoader(1.0, "2"), SlowLoader(0.0, "2")
    with _serving(monkeypatch, slow, fast):
        result = _deploy(ready_timeout=10).execute(task_context())
    assert result["deployed"] == {"challenger": "2"}
    assert (slow.share, fast.share) == (0.2, 0.2)


@pytest.mark.parametrize("slow_server", [(0.0, "2")], indirect=True)
def test_a_server_of_another_model_is_refused_before_anything_changes(slow_server: SlowLoader) -> None:
    """Two pipelines on one single-model server: the rollout of the second must not touch the first's split."""
    slow_server.model = "churn_auto"
    refused = (
        r"does not serve 'churn_live': http://127.0.0.1:\d+ serves \['churn_auto'\].*the model server was not changed"
    )
    with pytest.raises(AirflowFailException, match=refused):  # a setting to change: no retry
        _deploy(ready_timeout=5, registered_model="churn_live").execute(task_context())
    assert (slow_server.reloads, slow_server.share) == (0, None)  # no reload, no withdrawal: the split is untouched
    result = _deploy(ready_timeout=5, registered_model="churn_auto").execute(task_context())
    assert result["deployed"] == {"challenger": "2"}


def test_served_models_reads_every_kind_of_ready_body() -> None:
    from airflow_mlops.hooks.serving import served_models

    assert served_models({"model": "a", "versions": {"champion": "1"}}) == {"a"}
    assert served_models({"ready": True, "loaded": 1, "models": {"a": {"state": "loaded"}, "b": {}}}) == {"a", "b"}
    assert served_models({"versions": {"champion": "1"}}) is None  # a server that does not say: not refused


@pytest.mark.parametrize("slow_server", [(0.0, "2")], indirect=True)
def test_a_server_with_no_champion_yet_is_checked_by_its_503_body(slow_server: SlowLoader) -> None:
    """Before a first release /ready answers 503, naming its model all the same: the check reads it, not the code."""
    from airflow_mlops.hooks.serving import ServingHook

    slow_server.ready_status = 503
    ServingHook().check_serves("churn")
    assert ServingHook().check_available("churn") == 1
    with pytest.raises(ServingError, match=r"does not serve 'churn_live'"):
        ServingHook().check_available("churn_live")


@pytest.mark.parametrize("slow_server", [(0.0, "2")], indirect=True)
def test_a_server_of_several_models_needs_shared_server_and_an_html_page_is_named(slow_server: SlowLoader) -> None:
    """Its root path takes no model calls (the alias would move, then the rollout fail); a proxy page is no answer."""
    from airflow_mlops.hooks.serving import ServingHook

    slow_server.ready_body = {"ready": True, "loaded": 2, "models": {"churn": {}, "churn_auto": {}}}
    with pytest.raises(
        ServingError, match=r"serves several models \['churn', 'churn_auto'\]: set serving.shared_server"
    ):
        ServingHook().check_available("churn")
    slow_server.ready_body, slow_server.ready_status, slow_server.ready_page = None, 503, b"<html>Bad gateway</html>"
    with pytest.raises(ServingError, match=r"/ready: HTTP 503: not a JSON object: '<html>Bad gateway</html>'"):
        ServingHook().check_available("churn")


def test_a_dns_name_stands_for_every_address_it_resolves_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """``dns+http://name:port``: a headless Service's pods, resolved at every call (pure logic: getaddrinfo faked)."""
    import socket

    from airflow_mlops.exceptions import ServingError
    from airflow_mlops.hooks.serving import replica_urls

    pods = {"model-server-pods.ml": ["10.0.0.7", "10.0.0.5", "10.0.0.7", "fd00::9"], "v6.ml": ["fd00::9", "fd00::3"]}

    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        if host not in pods:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        family = {False: socket.AF_INET, True: socket.AF_INET6}
        return [(family[":" in a], socket.SOCK_STREAM, 6, "", (a, port)) for a in pods[host]]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert replica_urls(["dns+http://model-server-pods.ml:8000", "http://other:9000"]) == [
        "http://10.0.0.5:8000",  # each pod once: its IPv6 address too would reload and smoke-test it twice
        "http://10.0.0.7:8000",
        "http://other:9000",
    ]
    assert replica_urls(["dns+http://v6.ml:8000"]) == ["http://[fd00::3]:8000", "http://[fd00::9]:8000"]
    with pytest.raises(ServingError, match=r"dns\+http://:8000: expected dns\+http://name:port, found no name"):
        replica_urls(["dns+http://:8000"])
    pods["model-server-pods.ml"] = ["10.0.0.8"]  # a rollout replaced the pods: the next call sees the new one
    assert replica_urls(["dns+http://model-server-pods.ml:8000"]) == ["http://10.0.0.8:8000"]
    with pytest.raises(ServingError, match=r"dns\+http://gone:8000: 'gone' resolves to no address"):
        replica_urls(["dns+http://gone:8000"])


@pytest.mark.parametrize("slow_server", [(0.0, "2")], indirect=True)
def test_a_reload_through_a_dns_name_reaches_the_replica(
    slow_server: SlowLoader, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_mlops.hooks.serving import ServingHook

    port = slow_server.server_address[1]
    conn = {"conn_type": "mlops_serving", "host": f"dns+http://127.0.0.1:{port}", "password": "t"}
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SERVING_DEFAULT", json.dumps(conn))
    hook = ServingHook()
    assert hook.get_conn() == [slow_server.url]
    hook.reload()
    assert slow_server.reloads == 1
    assert hook.ready() == [{"model": "churn", "versions": {"champion": "1", "challenger": "2"}}]
    import asyncio

    assert asyncio.run(hook.ainstance_versions()) == {slow_server.url: {"champion": "1", "challenger": "2"}}


@pytest.mark.parametrize("slow_server", [(0.0, None)], indirect=True)
def test_a_manual_promotion_rolls_out_the_champion_without_a_smoke_row(slow_server: SlowLoader) -> None:
    """``<name>_promote`` at Level 3+ has no feature row: the servers reload, the split goes to 0, no smoke request."""
    slow_server.share = 0.2  # an A/B test was running
    deploy = DeployModelOperator(task_id="deploy", arm="champion", version="1", smoke_features=None,
                                 ready_timeout=5, deferrable=False, registered_model="churn")  # fmt: skip
    assert deploy.execute(task_context())["deployed"] == {"champion": "1"}
    assert (slow_server.reloads, slow_server.predictions, slow_server.share) == (1, 0, 0.0)


@pytest.mark.parametrize("slow_server", [(0.0, None)], indirect=True)
def test_waiting_for_readiness_waits_through_a_503(slow_server: SlowLoader) -> None:
    """A pod with no champion yet answers /ready with 503 (dns+http reaches not-ready pods): wait, don't fail."""
    from airflow_mlops.hooks.serving import ServingHook

    slow_server.ready_status, slow_server.versions = 503, {}  # starting: no champion loaded yet

    def loaded() -> None:
        slow_server.ready_status, slow_server.versions = 200, {"champion": "1"}

    timer = threading.Timer(1.0, loaded)
    timer.start()
    try:
        ServingHook().wait_ready({"champion": "1"}, timeout=10, poll_interval=0.2)
    finally:
        timer.cancel()
    assert slow_server.ready_status == 200  # it waited for the load, and did not fail on the first 503


@pytest.mark.parametrize("slow_server", [(0.0, "2")], indirect=True)
def test_the_deferred_wait_reads_versions_from_a_503_ready_as_the_sync_wait_does(slow_server: SlowLoader) -> None:
    """A server whose log spool is full answers /ready with 503 and its versions: a rollout still sees them."""
    import asyncio

    from airflow_mlops.hooks.serving import ServingHook

    slow_server.ready_status = 503
    ServingHook().reload()
    assert asyncio.run(ServingHook().ainstance_versions()) == {slow_server.url: {"champion": "1", "challenger": "2"}}
    slow_server.ready_page = b"<html>502 Bad Gateway</html>"
    assert asyncio.run(ServingHook().ainstance_versions()) == {slow_server.url: "HTTP 503"}


def test_only_a_wrong_server_fails_without_retry() -> None:
    """A server that serves another model is a setting; an unreachable one may come back, so it is retried."""
    from airflow_mlops.exceptions import DeploymentError, ServingError, WrongServerError
    from airflow_mlops.operators.base import serving_failure

    wrong = serving_failure("no: wrong", WrongServerError("serves ['b']"))
    assert isinstance(wrong, AirflowFailException)
    assert str(wrong) == "no: wrong"
    down = serving_failure("no: down", ServingError("connection refused"))
    assert isinstance(down, DeploymentError)
    assert not isinstance(down, AirflowFailException)
