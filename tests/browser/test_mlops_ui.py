"""The Airflow UI and the MLOps pages in a real browser (Playwright driving Debian's chromium).

A short Level 4 history is made for real first (``churn_auto``: v1 trained and promoted by the
cold-start rule, served, calm then drifted traffic, two monitor runs). Then Airflow restarts on the
same home the way a person would run it: api-server with the plugin, scheduler, dag-processor and
triggerer, SimpleAuthManager users from a passwords file (an admin and a viewer), an ``mlflow
server`` as the connection's ``ui_url``, and the files pipeline beside the Level 4 one. The browser
logs in through the login form, triggers the files training DAG from its Params form with a
hyperparameter override, follows the MLflow extra link, and looks at every MLOps page.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
import yaml

from demo.closed_loop import ClosedLoop, closed_loop_spec
from demo.cluster import VENV_BIN, AirflowCluster, drop_database, free_port, wait_until
from demo.world import World
from tests.support.paths import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(2400)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
USERS = {"admin": "admin-browser-pass", "viewer": "viewer-browser-pass"}
ARTIFACTS = REPO / "test-artifacts"
PIPELINE = "churn_auto"
FILES = "churn_files"


def make_history(home: Path) -> ClosedLoop:
    """A real Level 4 history: v1 champion, served answers, a calm and a drifted monitor run."""
    spec = closed_loop_spec(yaml.safe_load((REPO / "dags" / "pipelines" / f"{PIPELINE}.yaml").read_text()))
    # A database of its own: parallel runs (two sessions, or CI beside a developer) never drop each other's.
    data_db = f"mlops_browser_{uuid.uuid4().hex[:10]}"
    loop = ClosedLoop(home=home, spec=spec, loader=REPO / "dags" / "mlops_pipelines.py", data_db=data_db)
    world = World(loop.dsn)
    with loop.report_on_failure():
        loop.start(world)
        loop.run("train", "manual__v1")
        loop.serving.wait_for({"champion": "1"})
        loop.traffic(world, 400, phase="calm")
        loop.run("monitor", "manual__monitor_1")
        world.drift = 1.0
        loop.traffic(world, 500, phase="drifted")
        loop.run("monitor", "manual__monitor_2")
    return loop


def add_files_pipeline(dags: Path) -> None:
    """The Level 2 files pipeline next to the Level 4 one, without schedules (only the form starts it)."""
    shutil.copytree(REPO / "dags" / "pipelines" / "data", dags / "pipelines" / "data", dirs_exist_ok=True)
    spec = yaml.safe_load((REPO / "dags" / "pipelines" / f"{FILES}.yaml").read_text())
    spec.update(schedule=None, watch={"schedule": None}, retries=0)
    (dags / "pipelines" / f"{FILES}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def start_mlflow_ui(home: Path, tracking_uri: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (home / "mlflow-server.log").open("wb")
    proc = subprocess.Popen(
        [str(VENV_BIN / "mlflow"), "server", "--backend-store-uri", tracking_uri, "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5):
                return True
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited: {(home / 'mlflow-server.log').read_text()[-2000:]}"
                ) from None
            return False

    wait_until(up, timeout=240, interval=2, what="the MLflow server")
    return proc, url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("browser")
    loop = make_history(home / "loop")
    env = dict(loop.airflow.extra_env)
    loop.stop()
    add_files_pipeline(home / "loop" / "dags")
    mlflow_proc, mlflow_url = start_mlflow_ui(home, loop.tracking_uri)
    (home / "passwords.json").write_text(json.dumps(USERS))
    env.update(
        {
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(
                {"conn_type": "mlflow", "host": loop.tracking_uri, "extra": {"ui_url": mlflow_url}}
            ),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        }
    )
    cluster = AirflowCluster(home=loop.home / "airflow", dags_folder=loop.home / "dags", extra_env=env)
    try:
        with cluster.report_on_failure():
            cluster.start()
            cluster.wait_for_api(timeout=300)
            cluster.wait_for_dags([f"{FILES}_train", f"{PIPELINE}_train"], timeout=300)
            yield {
                "cluster": cluster,
                "loop": loop,
                "mlflow_url": mlflow_url,
                "base": f"http://127.0.0.1:{cluster.api_port}",
            }
    finally:
        cluster.stop()
        mlflow_proc.terminate()
        mlflow_proc.wait(timeout=30)
        drop_database(loop.data_db)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def login(browser: Any, base: str, user: str) -> Any:
    """A page logged in through the real login form."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_navigation_timeout(90_000)  # the UIs' bundles load slowly on a busy 2-core machine
    page = context.new_page()
    page.goto(f"{base}/", wait_until="networkidle")
    page.locator("input:not([type=password])").first.fill(user)
    page.locator("input[type=password]").fill(USERS[user])
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
    return page


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def api(stack: dict[str, Any], path: str, user: str = "admin", method: str = "GET", body: Any = None) -> Any:
    base = stack["base"]
    request = urllib.request.Request(
        f"{base}/auth/token", data=json.dumps({"username": user, "password": USERS[user]}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        token = json.load(response)["access_token"]
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    call = urllib.request.Request(f"{base}{path}", data=data, headers=headers, method=method)
    with urllib.request.urlopen(call, timeout=60) as response:
        return json.load(response)


def test_anonymous_requests_to_the_pages_get_401(stack: dict[str, Any]) -> None:
    for path in ("/mlops/pipelines", "/mlops/history", "/mlops/api/scorecard", "/mlops/static/plotly.min.js"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{stack['base']}{path}", timeout=30)
        assert caught.value.code == 401, path


def test_dag_list_has_no_import_errors(stack: dict[str, Any], browser: Any) -> None:
    assert api(stack, "/api/v2/importErrors")["total_entries"] == 0
    page = login(browser, stack["base"], "admin")
    page.goto(f"{stack['base']}/dags", wait_until="networkidle")
    page.get_by_text(f"{FILES}_train").first.wait_for(timeout=60_000)
    shot(page, "01-dag-list")
    assert page.get_by_text("Import Errors").count() == 0


def test_files_training_from_the_params_form_reaches_success_and_links_to_mlflow(
    stack: dict[str, Any], browser: Any
) -> None:
    cluster: AirflowCluster = stack["cluster"]
    dag = f"{FILES}_train"
    page = login(browser, stack["base"], "admin")
    page.goto(f"{stack['base']}/dags/{dag}", wait_until="networkidle")
    page.get_by_role("button", name="Trigger").first.click()
    form = page.get_by_role("dialog")
    form.get_by_text("Hyperparameter overrides").first.wait_for(timeout=30_000)
    editor = form.locator(".monaco-editor").first  # the object Param's JSON editor (Monaco)
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Backspace")
    # One input event: the form re-formats the JSON whenever it parses, so typing key by key mangles it.
    page.keyboard.insert_text('{"C": 0.25}')
    shot(page, "02-trigger-form")
    before = {r["run_id"] for r in cluster.runs(dag)}
    form.get_by_role("button", name="Trigger").last.click()
    run_id = wait_until(
        lambda: next((r["run_id"] for r in cluster.runs(dag) if r["run_id"] not in before), None),
        timeout=120, what=f"a new {dag} run",
    )  # fmt: skip
    cluster.wait_for_run(dag, run_id, timeout=900)
    conf = api(stack, f"/api/v2/dags/{dag}/dagRuns/{run_id}")["conf"]
    assert conf["hyperparameters"] == {"C": 0.25}

    from mlflow import MlflowClient

    client = MlflowClient(stack["loop"].tracking_uri)
    links = api(stack, f"/api/v2/dags/{dag}/dagRuns/{run_id}/taskInstances/train/links")
    url = links["extra_links"]["MLflow run"]
    assert url.startswith(stack["mlflow_url"])
    mlflow_run_id = url.rstrip("/").rsplit("/", 1)[1]
    assert client.get_run(mlflow_run_id).data.params["C"] == "0.25"
    page.goto(f"{stack['base']}/dags/{dag}/runs/{run_id}/tasks/train", wait_until="networkidle")
    page.get_by_text("MLflow run").first.wait_for(timeout=60_000)
    shot(page, "03-train-task-extra-link")
    page.goto(url, wait_until="domcontentloaded")  # MLflow's UI keeps polling: wait for the run's name instead
    page.get_by_text(f"{dag}.train.{run_id}").first.wait_for(timeout=90_000)  # the run's name on its page
    shot(page, "04-mlflow-run")
    tab = login(browser, stack["base"], "viewer")
    tab.goto(f"{stack['base']}/mlops/run?dag_id={dag}&run_id={quote(run_id)}", wait_until="networkidle")
    assert mlflow_run_id[:12] in tab.content()
    assert "started by manual" in tab.locator(".fact").first.inner_text()  # the trigger form's run
    shot(tab, "05-run-tab")


def test_mlops_pages_show_real_content_to_a_viewer(stack: dict[str, Any], browser: Any) -> None:
    base = stack["base"]
    page = login(browser, base, "viewer")

    page.goto(f"{base}/mlops/pipelines", wait_until="networkidle")
    card = page.locator(f"#pipeline-{PIPELINE}")
    assert f"{PIPELINE} v1" in card.locator(".fact").first.inner_text()  # the champion, with its ledger row
    assert "ledger row" in card.locator(".fact").first.inner_text()
    assert card.locator("table.score tr.met").count() >= 3
    shot(page, "10-pipelines")

    page.goto(f"{base}/mlops/history?pipeline={PIPELINE}", wait_until="networkidle")
    rows = page.locator("ol.timeline > li")
    assert rows.count() >= 1
    assert "promote" in rows.first.inner_text()
    page.locator("input[name=at]").fill(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()))
    page.get_by_role("button", name="Ask the ledger").click()
    page.wait_for_load_state("networkidle")
    assert "was champion" in page.locator(".answer").inner_text()
    shot(page, "11-history")

    page.goto(f"{base}/mlops/monitoring?pipeline={PIPELINE}", wait_until="networkidle")
    page.locator("#chart-drift_share .scatterlayer .point").first.wait_for(timeout=30_000)
    assert page.locator("#chart-drift_share .scatterlayer .point").count() >= 2
    shot(page, "12-monitoring")

    page.goto(f"{base}/mlops/trace?pipeline={PIPELINE}", wait_until="networkidle")
    page.locator("ul.recent a").first.click()
    page.wait_for_load_state("networkidle")
    chain = page.locator("ol.chain li")
    assert chain.count() == 7
    assert page.locator("ol.chain li.missing").count() == 0
    assert "digest" in chain.nth(4).inner_text()
    shot(page, "13-trace")

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{base}/mlops/trace?pipeline={PIPELINE}", timeout=30)
    assert caught.value.code == 401

    page.goto(f"{base}/plugin/mlops", wait_until="networkidle")
    frame = page.frame_locator("iframe").first  # Airflow's sandbox: no popups, no top navigation of its own
    frame.locator("h1").first.wait_for(timeout=60_000)
    shot(page, "14-inside-airflow-nav")
    to_mlflow = frame.locator(f"#pipeline-{PIPELINE} .fact a[target=_blank]").first
    with page.context.expect_page(timeout=60_000) as opened:
        to_mlflow.click()
    assert opened.value.url == to_mlflow.get_attribute("href")
    assert opened.value.url.startswith(stack["mlflow_url"])
    opened.value.close()
    to_airflow = frame.locator(f"#pipeline-{PIPELINE} a[target=_top]").first
    dag_id = to_airflow.get_attribute("href").split("/")[2]  # /dags/<dag_id>/runs/...
    to_airflow.click()
    page.wait_for_url(lambda url: url.startswith(f"{base}/dags/{dag_id}/runs/"), timeout=60_000)


def test_a_monitor_runs_tab_and_the_dark_mode_follow_airflow(stack: dict[str, Any], browser: Any) -> None:
    """The MLOps tab of a monitor run shows its verdicts; Airflow's dark mode darkens the framed pages too."""
    base = stack["base"]
    runs = api(stack, f"/api/v2/dags/{PIPELINE}_monitor/dagRuns?order_by=-run_after")["dag_runs"]
    run_id = runs[0]["dag_run_id"]
    page = login(browser, base, "viewer")
    page.evaluate("window.localStorage.setItem('theme', 'dark')")  # what Airflow's Appearance menu stores
    tab = f"{base}/dags/{PIPELINE}_monitor/runs/{quote(run_id, safe='')}/plugin/mlops_run"
    page.goto(tab, wait_until="networkidle")
    assert "dark" in (page.locator("html").get_attribute("class") or "")  # Airflow itself is dark
    frame = page.frame_locator("iframe").first
    frame.locator("h1").first.wait_for(timeout=60_000)
    assert "checks drift and live quality" in frame.locator("main").inner_text()
    assert frame.locator(".fact h3").all_inner_texts() == ["DRIFT CHECK", "QUALITY CHECK"]
    assert frame.locator("html.dark").count() == 1
    background = frame.locator("body").evaluate("body => getComputedStyle(body).backgroundColor")
    assert background == "rgb(15, 20, 26)", background  # the pages' dark --page colour, not white
    shot(page, "15-dark-monitor-run-tab")
