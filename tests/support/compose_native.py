"""The services of ``docker-compose.yaml``, mapped to processes on 127.0.0.1.

The compose file is the one source of truth for the distributed stack's commands and environment.
No Docker engine runs here, so :class:`NativeTopology` rewrites what a container would see into
what a local process needs: service host names (``postgres``, ``mlflow:5000``, ``model-server-1:8000``)
become ``127.0.0.1`` and a free port, the compose databases (``airflow``, ``mlflow``, ``mlops``) and
the Redis database become per-test names, container paths (``/opt/airflow/mlops-data``) become
folders, ``${VAR:-default}`` takes its default, and images that are not this project's (Prometheus,
the Pushgateway) run as Debian's binaries.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import REPO

COMPOSE_FILE = REPO / "docker-compose.yaml"
VENV_BIN = Path(sys.executable).parent
# Images that are not this project's, and the binary that stands in for each.
NATIVE_BINARIES = {"prom/prometheus": "/usr/bin/prometheus", "prom/pushgateway": "/usr/bin/prometheus-pushgateway"}
# Ports of services whose compose entry publishes none.
DEFAULT_PORTS = {"postgres": 5432, "redis": 6379}

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z0-9_]+)(?::?-(?P<default>[^}]*))?\}")
_URL = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<userinfo>[^@/\s\"',]*@)?(?P<host>[A-Za-z0-9_-]+)"
    r"(?::(?P<port>\d+))?(?P<path>/[A-Za-z0-9_./-]*)?"
)
_DSN_PAIR = re.compile(r"(?P<key>host|port|dbname|user|password)=(?P<value>\S+)")


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file with its anchors and ``<<`` merges resolved (by PyYAML)."""
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def container_port(service: dict[str, Any], name: str) -> int | None:
    """The port a service listens on inside its container (``ports``, ``expose``, a default), or ``None``."""
    for entry in service.get("ports", []):
        return int(str(entry).rsplit(":", 1)[-1])
    for entry in service.get("expose", []):
        return int(entry)
    return DEFAULT_PORTS.get(name)


@dataclass(frozen=True)
class NativeService:
    """One compose service as a local process: its argument list, environment and port (if it listens)."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int | None


@dataclass(frozen=True)
class NativeTopology:
    """Where each compose service lives on this machine.

    :param ports: service name -> local port (its container port maps to it); every service a
        value may name must be here, ``postgres`` and ``redis`` included.
    :param databases: compose database name -> local Postgres database name.
    :param redis_db: the Redis database number that replaces the compose one.
    :param paths: container path -> local folder.
    :param pg_user: the local Postgres role (trust authentication, no password).
    :param variables: values for ``${VAR}`` references (others take their compose default).
    """

    ports: dict[str, int]
    databases: dict[str, str]
    redis_db: int
    paths: dict[str, Path] = field(default_factory=dict)
    pg_user: str = "postgres"
    variables: dict[str, str] = field(default_factory=dict)

    # --- values -------------------------------------------------------------------------------

    def rewrite(self, value: str) -> str:
        """A compose value (env value or argument) as a local process needs it."""
        value = _VARIABLE.sub(lambda m: self.variables.get(m.group("name"), m.group("default") or ""), value)
        if value.startswith("{"):
            return json.dumps(self._connection(json.loads(value)))
        if "host=" in value and "dbname=" in value:
            return self._dsn(value)
        return self._paths(_URL.sub(self._url, value))

    def _url(self, match: re.Match[str]) -> str:
        host = match.group("host")
        if host not in self.ports:
            return match.group(0)
        scheme, userinfo, path = match.group("scheme"), match.group("userinfo") or "", match.group("path") or ""
        if host == "postgres":
            userinfo = f"{self.pg_user}@"
            path = "/" + self.databases.get(path.strip("/"), path.strip("/"))
        elif host == "redis":
            path = f"/{self.redis_db}"
        return f"{scheme}{userinfo}127.0.0.1:{self.ports[host]}{path}"

    def _dsn(self, value: str) -> str:
        pairs = dict(m.group("key", "value") for m in _DSN_PAIR.finditer(value))
        host = pairs.get("host", "")
        if host not in self.ports:
            return value
        database = self.databases.get(pairs.get("dbname", ""), pairs.get("dbname", ""))
        return f"host=127.0.0.1 port={self.ports[host]} dbname={database} user={self.pg_user}"

    def _connection(self, conn: dict[str, Any]) -> dict[str, Any]:
        """An ``AIRFLOW_CONN_*`` JSON connection: a service host becomes 127.0.0.1 and its port."""
        out = {k: (self.rewrite(v) if isinstance(v, str) and k != "host" else v) for k, v in conn.items()}
        host = str(conn.get("host", ""))
        if host in self.ports:
            out.update(host="127.0.0.1", port=self.ports[host])
            if host == "postgres":
                out["login"] = self.pg_user
                out.pop("password", None)
                out["schema"] = self.databases.get(str(conn.get("schema", "")), conn.get("schema"))
        else:
            out["host"] = self.rewrite(host)
        if isinstance(conn.get("extra"), dict):
            out["extra"] = {k: self.rewrite(v) if isinstance(v, str) else v for k, v in conn["extra"].items()}
        return out

    def _paths(self, value: str) -> str:
        for inside in sorted(self.paths, key=len, reverse=True):
            value = re.sub(rf"(^|=|file://){re.escape(inside)}(?=/|$)", rf"\g<1>{self.paths[inside]}", value)
        return value

    # --- services -----------------------------------------------------------------------------

    def service(self, compose: dict[str, Any], name: str) -> NativeService:
        """Command and environment of compose service ``name``, rewritten for 127.0.0.1."""
        spec = compose["services"][name]
        inside = container_port(spec, name)
        env = {str(k): self.rewrite(str(v)) for k, v in (spec.get("environment") or {}).items()}
        return NativeService(name, self._command(spec, name, inside), env, self.ports.get(name))

    def _command(self, spec: dict[str, Any], name: str, inside: int | None) -> list[str]:
        raw = spec.get("command") or []
        args = raw.split() if isinstance(raw, str) else [str(a) for a in raw]
        image = str(spec.get("image", "")).split(":")[0]
        if image in NATIVE_BINARIES:
            listen = f"--web.listen-address=127.0.0.1:{self.ports[name]}"
            return [NATIVE_BINARIES[image], *map(self.rewrite, args), listen]
        if "entrypoint" not in spec:  # the Airflow image's entrypoint runs `airflow <command>`
            args = ["airflow", *args]
        out = [str(VENV_BIN / args[0]) if (VENV_BIN / args[0]).exists() else args[0]]
        previous = ""
        for arg in args[1:]:
            if previous == "--host" and arg == "0.0.0.0":
                arg = "127.0.0.1"
            elif previous == "--port" and inside is not None and arg == str(inside):
                arg = str(self.ports[name])
            out.append(self.rewrite(arg))
            previous = arg
        return out

    def prometheus_config(self, source: Path, folder: Path, *, scrape_interval: str) -> Path:
        """Copy ``source``'s folder (config and rules) into ``folder``, with targets on 127.0.0.1."""
        folder.mkdir(parents=True, exist_ok=True)
        for path in source.parent.glob("*.yml"):
            shutil.copy(path, folder / path.name)
        config = yaml.safe_load(source.read_text())
        config["global"] = {**config.get("global", {}), "scrape_interval": scrape_interval,
                            "evaluation_interval": scrape_interval}  # fmt: skip
        for job in config["scrape_configs"]:
            for group in job.get("static_configs", []):
                group["targets"] = [self._target(t) for t in group["targets"]]
        target = folder / source.name
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    def _target(self, target: str) -> str:
        host = target.split(":")[0]
        if host == "localhost":  # Prometheus scraping itself
            return f"127.0.0.1:{self.ports['prometheus']}"
        return f"127.0.0.1:{self.ports[host]}" if host in self.ports else target
