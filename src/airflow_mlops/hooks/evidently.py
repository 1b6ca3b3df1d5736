"""EvidentlyHook: an Evidently workspace (a local folder or a remote Evidently UI) from a connection."""

from __future__ import annotations

import contextlib
import copy
import threading
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, conf

from airflow_mlops.home import airflow_home
from airflow_mlops.hooks.connection_forms import EVIDENTLY_FORM

if TYPE_CHECKING:
    from collections.abc import Iterator

    from evidently.core.report import Snapshot
    from evidently.ui.workspace import Project, WorkspaceBase

_PROJECT_LOCK = threading.Lock()
# The panels a pipeline's project starts with: (tab, title, metric, value label), by task. Evidently
# opens a project on its dashboard, which is empty until panels are added.
DASHBOARD_PANELS: dict[str, list[tuple[str, str, str, str | None]]] = {
    "drift": [
        ("Drift", "Share of drifted features (monitor runs)", "DriftedColumnsCount", "share"),
        ("Drift", "Drifted features (monitor runs)", "DriftedColumnsCount", "count"),
    ],
    "classification": [
        ("Quality", "Live accuracy (labelled answers)", "Accuracy", None),
        ("Quality", "Live F1 (labelled answers)", "F1Score", None),
    ],
    "regression": [
        ("Quality", "Live mean absolute error (labelled answers)", "MAE", "mean"),
        ("Quality", "Live RMSE (labelled answers)", "RMSE", None),
    ],
}


def default_workspace_path() -> str:
    """``[mlops] evidently_workspace`` from the Airflow config, else ``<AIRFLOW_HOME>/evidently``.

    See :func:`airflow_mlops.home.airflow_home`.
    """
    configured = conf.get("mlops", "evidently_workspace", fallback=None)
    if configured:
        return str(configured)
    return str(airflow_home() / "evidently")


@dataclass(frozen=True)
class SnapshotInfo:
    """Where a snapshot went: its id, the project (id and name) and a URL or file path to it."""

    snapshot_id: str
    project_id: str
    project: str
    url: str

    def as_dict(self) -> dict[str, str]:
        return {
            "evidently_snapshot_id": self.snapshot_id,
            "evidently_project_id": self.project_id,
            "evidently_project": self.project,
            "evidently_url": self.url,
        }


class EvidentlyHook(BaseHook):
    """Store Evidently snapshots in a workspace, one project per pipeline.

    Without the connection the workspace is a local folder: ``[mlops] evidently_workspace`` if set,
    else ``<AIRFLOW_HOME>/evidently`` (point ``evidently ui --workspace`` at it to browse). A
    connection whose host is a URL (``http://evidently:8000``, or a host name with scheme and port)
    is a remote Evidently UI; its password, if any, is the UI's write secret. A host that is a
    ``file://`` URI or an absolute path names a local folder.

    :param evidently_conn_id: the Evidently connection; absent means the local default folder.
    """

    conn_name_attr = "evidently_conn_id"
    default_conn_name = "evidently_default"
    conn_type = "evidently"
    hook_name = "Evidently"

    def __init__(self, evidently_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.evidently_conn_id = evidently_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """A URL (or a folder) and an optional secret are all a workspace needs."""
        return copy.deepcopy(EVIDENTLY_FORM)

    @cached_property
    def settings(self) -> dict[str, Any]:
        """``{"kind": "local" | "remote", "location": folder or base URL, "secret": str | None}``."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            conn = self.get_connection(self.evidently_conn_id)
        except AirflowNotFoundException:
            return {"kind": "local", "location": default_workspace_path(), "secret": None}
        return self.settings_from(conn)

    @staticmethod
    def settings_from(conn: Any) -> dict[str, Any]:
        """Resolve settings from a Connection object."""
        host = (conn.host or "").strip()
        if not host:
            return {"kind": "local", "location": default_workspace_path(), "secret": None}
        if host.startswith("file://"):
            return {"kind": "local", "location": host.removeprefix("file://"), "secret": None}
        if host.startswith("/"):
            return {"kind": "local", "location": host, "secret": None}
        if "://" in host:
            url = host
        else:
            scheme = conn.schema or "http"
            url = f"{scheme}://{host}:{conn.port}" if conn.port else f"{scheme}://{host}"
        return {"kind": "remote", "location": url.rstrip("/"), "secret": conn.password or None}

    @property
    def location(self) -> str:
        """The workspace folder or the Evidently UI base URL."""
        return str(self.settings["location"])

    def get_conn(self) -> WorkspaceBase:
        """The Evidently workspace (a remote one is verified to answer as Evidently)."""
        s = self.settings
        if s["kind"] == "remote":
            from evidently.ui.workspace import RemoteWorkspace

            return RemoteWorkspace(s["location"], secret=s["secret"])
        from evidently.ui.workspace import Workspace

        Path(s["location"]).mkdir(parents=True, exist_ok=True)
        return Workspace(s["location"])

    @cached_property
    def workspace(self) -> WorkspaceBase:
        """The workspace, built once per hook."""
        return self.get_conn()

    def project(self, name: str, description: str | None = None) -> Project:
        """The project called ``name``, created on first use (get-or-create, keyed by the exact name).

        In a local folder creation is serialised by a file lock, so two tasks racing on a new
        pipeline still make one project. If a remote UI holds several projects of that name (ids are
        time-ordered UUIDv7), the oldest is used.
        """
        with self._creation_lock():
            found = [p for p in self.workspace.search_project(name) if p.name == name]
            if found:
                return min(found, key=lambda p: str(p.id))
            return self.workspace.create_project(name, description=description)

    @contextlib.contextmanager
    def _creation_lock(self) -> Iterator[None]:
        with _PROJECT_LOCK:
            if self.settings["kind"] != "local":
                yield
                return
            import fcntl

            folder = Path(self.location)
            folder.mkdir(parents=True, exist_ok=True)
            with (folder / ".mlops-projects.lock").open("w") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def add_snapshot(
        self, project: str, snapshot: Snapshot, *, name: str | None = None, task: str | None = None
    ) -> SnapshotInfo:
        """Add ``snapshot`` (a Report run) to the project ``project``, creating the project if needed.

        With ``task`` (``classification`` or ``regression``), a project whose dashboard has no panel
        gets the drift and quality panels of :data:`DASHBOARD_PANELS`; one a person arranged is left alone.
        """
        target = self.project(project, description=f"airflow-provider-mlops pipeline {project}")
        if task is not None:
            self._default_dashboard(target, task)
        ref = self.workspace.add_run(target.id, snapshot, name=name)
        return SnapshotInfo(str(ref.id), str(target.id), project, str(ref.url))

    def _default_dashboard(self, project: Project, task: str) -> None:
        """Give an empty dashboard the panels of :data:`DASHBOARD_PANELS` (a failure only costs the panels).

        The model is saved whole: Evidently 0.7.23's ``add_panel`` lists a panel twice in a tab that exists.
        """
        from evidently.sdk.models import DashboardModel, DashboardTabModel, PanelMetric
        from evidently.sdk.panels import line_plot_panel

        try:
            with self._creation_lock():
                if project.dashboard.model().panels:
                    return
                tabs: dict[str, DashboardTabModel] = {}
                panels = []
                for tab, title, metric, value in [*DASHBOARD_PANELS["drift"], *DASHBOARD_PANELS.get(task, [])]:
                    labels = {"value_type": value} if value else {}
                    legend = title.split(" (")[0]
                    panel = line_plot_panel(title, [PanelMetric(legend=legend, metric=metric, metric_labels=labels)])
                    panels.append(panel)
                    tabs.setdefault(tab, DashboardTabModel(id=uuid.uuid4(), title=tab, panels=[])).panels.append(
                        panel.id
                    )
                self.workspace.save_dashboard(project.id, DashboardModel(tabs=list(tabs.values()), panels=panels))
        except Exception as err:  # the snapshot matters, the panels do not
            self.log.warning("Evidently project %s: its dashboard panels were not added: %s", project.name, err)

    def test_connection(self) -> tuple[bool, str]:
        """Open the workspace and list its projects."""
        try:
            self.workspace.list_projects()
        except Exception as err:
            return False, str(err)
        return True, f"Evidently workspace at {self.location}"
