"""The MLOps pages mounted by the real plugin in Airflow's api app, behind SimpleAuthManager.

Users come from a passwords file (an admin and a viewer); tokens come from ``/auth/token``, as
the Airflow UI gets them. Anonymous requests must get 401 on every route, files included.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.paths import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator

USERS = {"admin": "admin-pass", "viewer": "viewer-pass"}
HEAVY = ("mlflow", "pandas", "numpy", "sklearn", "evidently", "plotly", "scipy", "pyarrow")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    tmp = tmp_path_factory.mktemp("ui")
    specs = tmp / "pipelines"
    shutil.copytree(REPO / "dags" / "pipelines" / "data", specs / "data")
    shutil.copy(REPO / "dags" / "pipelines" / "churn_files.yaml", specs / "churn_files.yaml")
    (specs / "broken.yaml").write_text("name: broken\nlevel: 9\n")  # listed as not shown, never a failure
    (tmp / "passwords.json").write_text(json.dumps(USERS))
    env = {
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(tmp / "passwords.json"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": "unit-test-secret-" + "x" * 64,
        "AIRFLOW__MLOPS__SPECS_FOLDER": str(specs),
        "AIRFLOW__MLOPS__LEDGER_URL": f"sqlite:///{tmp / 'ledger.db'}",
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": f"sqlite:///{tmp / 'mlflow.db'}"}),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.chdir(tmp)
        from airflow import plugins_manager, settings
        from airflow.api_fastapi.app import create_app, purge_cached_app
        from airflow.models import import_all_models
        from airflow.models.base import Base

        # settings read the plugins folder when airflow was first imported, perhaps by an earlier test
        mp.setattr(settings, "PLUGINS_FOLDER", str(REPO / "plugins"))
        mp.syspath_prepend(str(REPO / "plugins"))
        import_all_models()
        Base.metadata.create_all(settings.engine)  # the session's metadata DB: tokens are checked against it

        for cached in (plugins_manager._get_plugins, plugins_manager.get_fastapi_plugins):
            cached.cache_clear()
        purge_cached_app()
        with TestClient(create_app()) as test_client:
            yield test_client
        purge_cached_app()
        for cached in (plugins_manager._get_plugins, plugins_manager.get_fastapi_plugins):
            cached.cache_clear()


def token(client: Any, user: str) -> str:
    response = client.post("/auth/token", json={"username": user, "password": USERS[user]})
    assert response.status_code in (200, 201), response.text
    return str(response.json()["access_token"])


ROUTES = [
    "/mlops/pipelines",
    "/mlops/history",
    "/mlops/monitoring",
    "/mlops/trace",
    "/mlops/run?dag_id=churn_files_train&run_id=manual__1",
    "/mlops/api/scorecard",
    "/mlops/static/mlops.css",
    "/mlops/static/plotly.min.js",
    "/mlops/report/churn_files/abc/drift",
]


@pytest.mark.parametrize("route", ROUTES)
def test_anonymous_requests_get_401(client: Any, route: str) -> None:
    client.cookies.clear()
    assert client.get(route).status_code == 401


def test_a_browser_without_a_login_is_sent_to_airflows_login_and_back(client: Any) -> None:
    client.cookies.clear()
    page = client.get("/mlops/history?pipeline=churn_files", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 307
    assert page.headers["location"] == (
        "/api/v2/auth/login?next=http%3A%2F%2Ftestserver%2Fmlops%2Fhistory%3Fpipeline%3Dchurn_files"
    )
    login = client.get(page.headers["location"], follow_redirects=False)  # Airflow's own route takes it from here
    assert (login.status_code, login.headers["location"]) == (
        307,
        "/auth/login?next=http%3A%2F%2Ftestserver%2Fmlops%2Fhistory%3Fpipeline%3Dchurn_files",
    )
    assert client.get("/mlops/api/scorecard", headers={"Accept": "application/json"}).status_code == 401


def test_the_bare_prefix_goes_to_the_pages(client: Any) -> None:
    """``/mlops`` is below no route of the mounted app; it is sent on to ``/mlops/`` (then the pipelines)."""
    client.cookies.clear()
    bare = client.get("/mlops?pipeline=churn_files", follow_redirects=False)
    assert (bare.status_code, bare.headers["location"]) == (307, "/mlops/?pipeline=churn_files")
    client.cookies.set("_token", token(client, "viewer"))
    try:
        landed = client.get("/mlops")
        assert landed.status_code == 200
        assert str(landed.url).endswith("/mlops/pipelines")
    finally:
        client.cookies.clear()
    assert client.get("/mlopsx", follow_redirects=False).status_code != 307  # only the prefix itself


def test_a_bad_token_gets_403(client: Any) -> None:
    assert client.get("/mlops/pipelines", headers={"Authorization": "Bearer not-a-token"}).status_code == 403


@pytest.mark.parametrize("user", ["viewer", "admin"])
def test_pipelines_page_for_viewer_and_admin(client: Any, user: str) -> None:
    response = client.get("/mlops/pipelines", headers={"Authorization": f"Bearer {token(client, user)}"})
    assert response.status_code == 200, response.text
    page = response.text
    assert "churn_files" in page
    assert "Maturity scorecard" in page
    assert "No training run yet: trigger <code>churn_files_train</code>" in page
    assert "no training run carries mlops.dataset_digest: run <code>churn_files_train</code>" in page
    assert "not built at Level 2: <code>level: 4</code> in the spec adds it" in page
    assert "churn_files_monitor" not in page  # a Level 2 spec has no monitor DAG to trigger
    assert "Traceback" not in page


def test_the_token_cookie_works_like_the_airflow_ui(client: Any) -> None:
    client.cookies.set("_token", token(client, "viewer"))
    try:
        assert client.get("/mlops/history").status_code == 200
    finally:
        client.cookies.clear()


def test_empty_states_say_what_to_do(client: Any) -> None:
    auth = {"Authorization": f"Bearer {token(client, 'viewer')}"}
    monitoring = client.get("/mlops/monitoring?pipeline=churn_files", headers=auth).text
    assert "No monitor run yet for churn_files: monitoring starts at Level 4" in monitoring
    history = client.get("/mlops/history?pipeline=churn_files", headers=auth).text
    assert (
        "promote a version with <code>churn_files_promote</code>" in history or "Could not read the ledger" in history
    )
    bad_time = client.get("/mlops/history?pipeline=churn_files&at=yesterday", headers=auth).text
    assert "Time &#39;yesterday&#39;: not a date and time. Use a date and time such as" in bad_time
    assert "isoformat" not in bad_time  # Python's own words stay out of the page
    future = client.get("/mlops/history?pipeline=churn_files&at=2099-01-01T00:00", headers=auth).text
    assert "2099-01-01 00:00:00 UTC is still to come; the answer is for now." in future
    offset = client.get("/mlops/history?pipeline=churn_files&at=2026-06-01T12:00%2B02:00", headers=auth).text
    assert 'name="at" step="1" value="2026-06-01T10:00:00"' in offset  # the field keeps the time, in UTC
    assert "churn_files: ledger timeline" in bad_time  # the timeline still shows; only the question is refused
    unknown = client.get("/mlops/monitoring?pipeline=nope", headers=auth).text
    assert "No pipeline &#39;nope&#39; in the specs folder; pick one of churn_files." in unknown
    assert "No monitor run yet" not in unknown  # nothing of another pipeline is shown under that name
    assert '<option value="" selected disabled>pick a pipeline</option>' in unknown
    missing_run = client.get("/mlops/report/churn_files/0123456789abcdef/drift", headers=auth)
    assert (missing_run.status_code, missing_run.json()["detail"]) == (404, "no MLflow run '0123456789abcdef'")
    tab = client.get("/mlops/run?dag_id=churn_files_watch&run_id=manual__1", headers=auth).text
    assert "<code>churn_files_watch</code> watches the source for new data" in tab
    assert "Airflow has no run <code>manual__1</code> of <code>churn_files_watch</code>" in tab
    other = client.get("/mlops/run?dag_id=etl_nightly&run_id=manual__1", headers=auth).text
    assert "etl_nightly is not a DAG of a pipeline in the specs folder" in other
    bare = client.get("/mlops/run", headers=auth)
    assert bare.status_code == 200
    assert "This page is a DAG run&#39;s MLOps tab" in bare.text
    for page in (monitoring, history, bad_time, tab, other):
        assert "Traceback" not in page


def test_scorecard_api_and_static_files(client: Any) -> None:
    auth = {"Authorization": f"Bearer {token(client, 'viewer')}"}
    cards = client.get("/mlops/api/scorecard", headers=auth).json()["scorecards"]
    assert cards[0]["pipeline"] == "churn_files"
    assert cards[0]["achieved_level"] == 0
    plotly = client.get("/mlops/static/plotly.min.js", headers=auth)
    assert plotly.status_code == 200
    assert "plotly" in plotly.text[:2000].lower()
    assert client.get("/mlops/static/../app.py", headers=auth).status_code == 404
    frame_links = client.get("/mlops/static/frame_links.js", headers=auth)
    assert frame_links.status_code == 200
    assert "allow-popups" in frame_links.text
    theme = client.get("/mlops/static/theme.js", headers=auth)
    assert (theme.status_code, theme.headers["content-type"].split(";")[0]) == (200, "text/javascript")
    page = client.get("/mlops/pipelines", headers=auth).text
    assert page.index('src="static/theme.js"') < page.index('href="static/mlops.css"')  # the mode before first paint


def test_importing_the_plugin_loads_no_heavy_module_and_touches_no_database() -> None:
    code = (
        "import sys, runpy; sys.path.insert(0, 'plugins'); import mlops_plugin; "
        f"print([m for m in {HEAVY!r} if m in sys.modules]); print(mlops_plugin.MlopsPlugin.name)"
    )
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://nobody@127.0.0.1:1/none", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-3:-1] == ["[]", "mlops"]


def test_an_invalid_spec_file_is_named_on_the_pipelines_page(client: Any) -> None:
    client.cookies.set("_token", token(client, "admin"))
    page = client.get("/mlops/pipelines")
    assert page.status_code == 200
    assert "Not shown: 1 invalid spec file(s) in" in page.text
    assert "(broken.yaml). Airflow&#39;s Dags page names each mistake" in page.text
    assert "churn_files" in page.text  # the valid pipeline is still there


def test_a_ledger_that_cannot_be_read_is_not_called_empty(client: Any, monkeypatch: Any) -> None:
    """With Postgres refusing clients, the page said it could not read the ledger, then "No ledger row yet"."""
    from airflow_mlops.ui import views

    def refuse(*_: Any) -> Any:
        raise RuntimeError("FATAL: sorry, too many clients already")

    monkeypatch.setattr(views, "history", refuse)
    auth = {"Authorization": f"Bearer {token(client, 'viewer')}"}
    page = client.get("/mlops/history?pipeline=churn_files", headers=auth).text
    assert "too many clients already" in page
    assert "The timeline could not be read (above)." in page
    assert "No ledger row for" not in page


def test_a_registry_that_cannot_be_read_draws_no_conclusion(client: Any, monkeypatch: Any) -> None:
    """MLflow refusing: the page said "achieved Level 0" and "No champion yet" under the problem line."""
    from airflow_mlops import assessment

    def refuse(*_: Any) -> None:
        raise ConnectionError("MLflow refused the connection")

    monkeypatch.setattr(assessment, "COLLECTORS", (("MLflow", refuse), *assessment.COLLECTORS[1:]))
    auth = {"Authorization": f"Bearer {token(client, 'viewer')}"}
    page = client.get("/mlops/pipelines", headers=auth).text
    assert '<div class="notice">MLflow: ConnectionError: MLflow refused the connection</div>' in page
    assert "at least Level 0 · some evidence could not be read" in page
    assert "Unknown: the registry could not be read." in page
    for conclusion in ("achieved Level", "No champion yet", "No training run yet", "No monitor run yet"):
        assert conclusion not in page


def test_the_verdict_table_says_why(client: Any, monkeypatch: Any) -> None:
    """The page said "its reason is in the verdict", and the table showed only the badge."""
    from airflow_mlops.ui import monitoring

    point = {
        "at": "2026-12-04 10:00:00", "run_id": "abc", "decision": "insufficient_data", "metrics": {},
        "verdict": {"decision": "insufficient_data", "reasons": ["not enough traffic to judge (min_rows 200)"]},
        "mlflow_link": "", "report_link": "", "champion": "2",
    }  # fmt: skip
    figures = {"drift_share": {}, "column_drift": {}, "accuracy": {}}
    data = {"points": {"drift": [], "quality": [point]}, "figures": figures, "verdicts": [("quality", point)]}
    monkeypatch.setattr(monitoring, "charts", lambda sources: data)
    auth = {"Authorization": f"Bearer {token(client, 'viewer')}"}
    page = client.get("/mlops/monitoring?pipeline=churn_files", headers=auth).text
    assert '<td class="why">not enough traffic to judge (min_rows 200)</td>' in page


def test_a_path_of_no_page_is_a_page_for_a_browser_and_json_for_a_client(client: Any) -> None:
    """A browser got {"detail": "Not Found"} for /mlops/doesnotexist; it gets a page that links the others."""
    auth = {"Authorization": f"Bearer {token(client, 'viewer')}"}
    browser = client.get("/mlops/some/deep/path", headers={**auth, "Accept": "text/html"})
    assert browser.status_code == 404
    assert "There is no MLOps page <code>/mlops/some/deep/path</code>" in browser.text
    assert '<base href="/mlops/">' in browser.text  # the links resolve from the pages' root, however deep
    assert '<a href="pipelines">Pipelines</a>' in browser.text
    api = client.get("/mlops/some/deep/path", headers=auth)
    assert (api.status_code, api.json()) == (404, {"detail": "Not Found"})
    missing = client.get("/mlops/static/nope.js", headers={**auth, "Accept": "text/html"})
    assert missing.json()["detail"] == "no static file 'nope.js'"  # a route's own 404 keeps its words


def test_a_report_that_cannot_be_shown_is_a_404_and_leaves_no_folder(client: Any) -> None:
    """A run id MLflow calls malformed, and a monitor run that kept no report, were 500s; each report
    view left a copy of the report in a temporary folder."""
    import glob
    import os
    import tempfile

    from mlflow import MlflowClient

    auth = {"Authorization": f"Bearer {token(client, 'viewer')}"}
    folders = set(glob.glob(os.path.join(tempfile.gettempdir(), "mlops-report-*")))
    malformed = client.get("/mlops/report/churn_files/abc'/drift", headers=auth)
    assert (malformed.status_code, malformed.json()["detail"]) == (404, 'no MLflow run "abc\'"')
    store = MlflowClient(json.loads(os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"])["host"])
    run = store.create_run("0", tags={"mlops.pipeline": "churn_files", "mlops.monitor": "drift"})
    store.set_terminated(run.info.run_id)
    empty = client.get(f"/mlops/report/churn_files/{run.info.run_id}/drift", headers=auth)
    assert empty.status_code == 404
    assert empty.json()["detail"].startswith(f"run {run.info.run_id} kept no drift report (")
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "mlops-report-*"))) == folders
