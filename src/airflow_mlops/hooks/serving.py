"""ServingHook: the admin API of the provider's model server (one or more instances)."""

from __future__ import annotations

import copy
import socket
import time
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import BaseHook

from airflow_mlops.exceptions import ServingError, ServingTimeoutError, WrongServerError
from airflow_mlops.hooks.connection_forms import SERVING_FORM


def loaded_versions(ready: dict[str, Any]) -> dict[str, str]:
    """``{arm: version}`` from a ``/ready`` body (``{"models": {"champion": {"version": "3"}, ...}}``).

    A challenger the server could not load adds ``challenger_error`` (its reason), for a wait to show.
    """
    found: dict[str, str] = {}
    for key in ("models", "versions", "arms"):
        arms = ready.get(key)
        if isinstance(arms, dict):
            for arm, value in arms.items():
                version = value.get("version") if isinstance(value, dict) else value
                if version is not None:
                    found[arm] = str(version)
            break
    if isinstance(ready.get("challenger_error"), str):
        found["challenger_error"] = ready["challenger_error"]
    return found


def served_models(ready: dict[str, Any]) -> set[str] | None:
    """The registered models a ``/ready`` body says its server serves; ``None`` when it does not say."""
    if isinstance(ready.get("model"), str):  # a single-model server, or one model's path of a shared one
        return {ready["model"]}
    models = ready.get("models")
    if "loaded" in ready and isinstance(models, dict):  # the root of a server of several models
        return set(models)
    return None


def lagging(state: dict[str, dict[str, str] | str], expected: dict[str, str]) -> list[str]:
    """Instances that do not yet serve ``expected``, each with what they serve instead."""
    behind = []
    for url, versions in state.items():
        if isinstance(versions, str) or any(versions.get(arm) != v for arm, v in expected.items()):
            behind.append(f"{url} serves {versions}")
    return behind


DNS_PREFIX = "dns+"  # dns+http://name:port: every address the name resolves to (a headless Service's pods)


def replica_urls(urls: list[str]) -> list[str]:
    """``urls`` with each ``dns+http://name:port`` replaced by one URL per address ``name`` resolves to now.

    Replicas come and go (a Kubernetes Deployment), so the name is resolved at every call.
    :raises ServingError: a name that resolves to no address.
    """
    found: list[str] = []
    for url in urls:
        if not url.startswith(DNS_PREFIX):
            found.append(url)
            continue
        parts = urlsplit(url.removeprefix(DNS_PREFIX))
        if not parts.hostname:
            raise ServingError(f"{url}: expected dns+http://name:port, found no name")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as err:
            raise ServingError(f"{url}: {parts.hostname!r} resolves to no address ({err})") from err
        v4 = {str(info[4][0]) for info in infos if info[0] == socket.AF_INET}
        v6 = {str(info[4][0]) for info in infos if info[0] == socket.AF_INET6}
        for address in sorted(v4 or v6):  # a dual-stack pod has both: call it once
            host = f"[{address}]" if ":" in address else address
            found.append(urlunsplit((parts.scheme, f"{host}:{port}", parts.path, "", "")))
    return found


def model_prefix(model: str | None) -> str:
    """``/models/{model}`` (the name URL-quoted), or ``""`` for a single-model server."""
    if not model:
        return ""
    from urllib.parse import quote

    return f"/models/{quote(model, safe='')}"


class ServingHook(BaseHook):
    """Talk to every instance of the model server behind a connection of type ``mlops_serving``.

    The host holds one base URL or several, comma separated (``http://serve-1:8000,http://serve-2:8000``),
    or ``dns+http://name:8000`` for every address a name resolves to (a Kubernetes headless Service);
    the password is the admin token.

    :param serving_conn_id: the serving connection.
    :param model: on a server of several models, the registered model to talk to: its calls go to
        ``/models/{model}/...``; ``None`` (default): a single-model server's own paths.
    """

    conn_name_attr = "serving_conn_id"
    default_conn_name = "mlops_serving_default"
    conn_type = "mlops_serving"
    hook_name = "MLOps model server"

    def __init__(self, serving_conn_id: str = default_conn_name, model: str | None = None) -> None:
        super().__init__()
        self.serving_conn_id = serving_conn_id
        self.model = model
        self.prefix = model_prefix(model)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Only the URLs and the admin token matter."""
        return copy.deepcopy(SERVING_FORM)

    @cached_property
    def settings(self) -> dict[str, Any]:
        """URLs, token and timeout from the connection."""
        return self.settings_from(self.get_connection(self.serving_conn_id))

    @staticmethod
    def settings_from(conn: Any) -> dict[str, Any]:
        """Resolve settings from a Connection (also used by triggers, which fetch it async)."""
        urls = [u.strip().rstrip("/") for u in (conn.host or "").split(",") if u.strip()]
        if not urls:
            raise ValueError(f"connection {conn.conn_id!r}: set the host to the server URL(s)")
        urls = [u if "://" in u else f"http://{u}" + (f":{conn.port}" if conn.port else "") for u in urls]
        return {"urls": urls, "token": conn.password or "", "timeout": float(conn.extra_dejson.get("timeout", 10))}

    def get_conn(self) -> list[str]:
        """The instance base URLs (a ``dns+`` URL resolved to its addresses now)."""
        return replica_urls(self.settings["urls"])

    def test_connection(self) -> tuple[bool, str]:
        """Ask every instance for ``/health``."""
        try:
            for url in self.get_conn():
                self._call("GET", url, "/health")
        except Exception as err:
            return False, str(err)
        return True, f"{len(self.get_conn())} model server instance(s) answered"

    def _call(
        self,
        method: str,
        url: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        answered: tuple[int, ...] = (),
    ) -> dict[str, Any]:
        import requests

        headers = dict(headers or {})
        if self.settings["token"]:
            headers["Authorization"] = f"Bearer {self.settings['token']}"
        try:
            response = requests.request(
                method, f"{url}{path}", json=body, headers=headers, timeout=self.settings["timeout"]
            )
        except requests.ReadTimeout as err:  # connected and sent: the server may still be working on it
            raise ServingTimeoutError(
                f"{method} {url}{path}: no answer within {self.settings['timeout']}s (the connection's timeout)"
            ) from err
        except requests.RequestException as err:
            raise ServingError(f"{method} {url}{path}: unreachable: {err}") from err
        if response.status_code >= 400 and response.status_code not in answered:
            raise ServingError(f"{method} {url}{path}: HTTP {response.status_code}: {response.text[:300]}")
        try:
            answer = response.json() if response.content else {}
        except ValueError:  # an HTML error page of a proxy in front of the server
            answer = None
        if not isinstance(answer, dict):
            raise ServingError(
                f"{method} {url}{path}: HTTP {response.status_code}: not a JSON object: {response.text[:300]!r}"
            )
        return answer

    def check_available(self, model_name: str | None = None) -> int:
        """Raise :class:`ServingError` unless the connection exists and every instance answers ``/health``.

        With ``model_name``, every instance must also serve that registered model
        (:meth:`check_serves`). Returns the number of instances. A release checks this before it
        moves an alias it could not then roll out.
        """
        try:
            urls = self.get_conn()
        except Exception as err:  # AirflowNotFoundException, or a connection without a host
            raise ServingError(f"model server connection {self.serving_conn_id!r}: {err}") from err
        for url in urls:
            self._call("GET", url, "/health")
        if model_name:
            self.check_serves(model_name)
        return len(urls)

    def check_serves(self, model_name: str) -> None:
        """:class:`WrongServerError` naming each instance whose ``/ready`` names other registered models only.

        A rollout, a traffic change or a withdrawal sent to a server of another model would change
        that model's split. A server that does not name its models (an older one) passes.
        """
        others = []
        for url in self.get_conn():
            # 503 is an answer too: a server with no champion yet (a first release) still names its model
            body = self._call("GET", url, f"{self.prefix}/ready", answered=(503,))
            served = served_models(body)
            if served is not None and model_name not in served:
                others.append(f"{url} serves {sorted(served)}")
            elif "loaded" in body and not self.prefix:  # its root path takes no model calls
                others.append(f"{url} serves several models {sorted(served or ())}: set serving.shared_server: true")
        if others:
            raise WrongServerError(
                f"the model server of connection {self.serving_conn_id!r} does not serve {model_name!r}: "
                f"{'; '.join(others)}. Give the pipeline a serving connection of its own, or serve both from one "
                "server (airflow-mlops serve --model a --model b, with serving.shared_server: true)"
            )

    def reload(self) -> list[dict[str, Any]]:
        """Ask every instance to re-read the registry aliases now, each even if another failed.

        :raises ServingError: an instance refused or was unreachable (the first such error), after all were asked.
        :raises ServingTimeoutError: otherwise, when some instance did not answer within the timeout (all named).
        """
        answers: list[dict[str, Any]] = []
        timeouts: list[str] = []
        failures: list[ServingError] = []
        for url in self.get_conn():
            try:
                answers.append(self._call("POST", url, f"{self.prefix}/admin/reload"))
            except ServingTimeoutError as err:
                timeouts.append(str(err))
            except ServingError as err:
                failures.append(err)
        if failures:
            raise failures[0]
        if timeouts:
            raise ServingTimeoutError("; ".join(timeouts))
        return answers

    def set_traffic(self, challenger_share: float) -> list[dict[str, Any]]:
        """Set the challenger's share of traffic on every instance."""
        return [
            self._call("POST", url, f"{self.prefix}/admin/traffic", {"challenger_share": challenger_share})
            for url in self.get_conn()
        ]

    def ready(self) -> list[dict[str, Any]]:
        """Every instance's ``/ready`` body; a 503 is one too (no champion loaded yet: a pod still starting)."""
        return [self._call("GET", url, f"{self.prefix}/ready", answered=(503,)) for url in self.get_conn()]

    def predict(
        self, url: str, features: dict[str, Any], key: str | None = None, arm: str | None = None
    ) -> dict[str, Any]:
        """One prediction from one instance; ``arm`` forces champion or challenger (admin token needed)."""
        body: dict[str, Any] = {"features": features}
        if key:
            body["key"] = key
        headers = {"X-Mlops-Arm": arm} if arm else None
        return self._call("POST", url, f"{self.prefix}/predict", body, headers=headers)

    def wait_ready(self, expected: dict[str, str], *, timeout: float, poll_interval: float = 1.0) -> None:
        """Block until every instance serves ``expected`` (``{arm: version}``); :class:`ServingError` on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            states = [loaded_versions(body) for body in self.ready()]
            if all(all(s.get(a) == v for a, v in expected.items()) for s in states):
                return
            if time.monotonic() >= deadline:
                raise ServingError(f"serving not ready with {expected} after {timeout}s: {states}")
            time.sleep(poll_interval)

    async def ainstance_versions(self) -> dict[str, dict[str, str] | str]:
        """``{url: {arm: version}}`` per instance, or ``{url: "error text"}`` for one that did not answer."""
        import asyncio

        import httpx

        settings = self.settings_from(await self.aget_connection(self.serving_conn_id))
        try:
            urls = await asyncio.to_thread(replica_urls, settings["urls"])
        except ServingError as err:
            return {url: str(err) for url in settings["urls"]}

        async def one(client: httpx.AsyncClient, url: str) -> dict[str, str] | str:
            try:
                response = await client.get(f"{url}{self.prefix}/ready")
            except httpx.HTTPError as err:
                return f"{type(err).__name__}: {err}"
            # 503 is an answer too (no champion yet, or a full log spool): its body says what is loaded
            if response.status_code not in (200, 503):
                return f"HTTP {response.status_code}"
            try:
                return loaded_versions(response.json())
            except ValueError:  # not JSON: not our server's /ready
                return f"HTTP {response.status_code}"

        async with httpx.AsyncClient(timeout=settings["timeout"]) as client:
            results = await asyncio.gather(*(one(client, url) for url in urls))
        return dict(zip(urls, results, strict=True))
