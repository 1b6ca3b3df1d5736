"""The routes of the MLOps pages: one function a page, rendered with the package's Jinja2 templates.

:func:`airflow_mlops.ui.app.create_app` mounts this router behind Airflow's auth manager; nothing
here is reachable without it.
"""

from __future__ import annotations

import importlib.util
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from airflow_mlops.core import tags
from airflow_mlops.core.utc import as_utc
from airflow_mlops.ui import run_tab as run_tabs
from airflow_mlops.ui import views

if TYPE_CHECKING:
    from airflow_mlops.pipeline_sources import PipelineSources

HERE = Path(__file__).parent
STATIC_FILES = {
    "mlops.css": "text/css",
    "mlops.js": "text/javascript",
    "frame_links.js": "text/javascript",
    "theme.js": "text/javascript",
}
UNENCODED_PLUS = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")
TABS = (("pipelines", "Pipelines"), ("history", "Promotion history"), ("monitoring", "Monitoring"), ("trace", "Trace"))


def plotly_js() -> Path | None:
    """``plotly.min.js`` shipped inside the installed plotly package (found without importing plotly)."""
    spec = importlib.util.find_spec("plotly")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path
    return None


TRAILING_UTC = re.compile(r"\s*UTC$", re.IGNORECASE)


def parse_time(value: str | None) -> datetime | None:
    """A form's date-time (``2026-12-01T10:30``, UTC unless it says otherwise) in UTC, or ``None``.

    An offset's unencoded ``+`` arrives as a space (``10:30 05:00``) and is read as ``+05:00``.
    """
    if not value or not value.strip():
        return None
    text = UNENCODED_PLUS.sub(r"\1+\2", value.strip()).replace("Z", "+00:00").replace("z", "+00:00")
    text = TRAILING_UTC.sub("+00:00", text)  # the pages print times as "2026-12-05 18:28:30 UTC"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not a date and time") from None
    try:
        return as_utc(moment)
    except OverflowError as err:
        raise ValueError("out of the range of dates") from err


def _pipelines() -> tuple[list[PipelineSources], str]:
    """Sources of every spec in the specs folder, and a notice when there are none."""
    from airflow_mlops.pipeline_sources import PipelineSources, check_pipeline_specs, specs_folder

    folder = specs_folder()
    try:
        specs, invalid = check_pipeline_specs(folder)
    except Exception as err:
        return [], f"The pipeline specs in {folder} do not load: {err}"
    notice = (
        f"Not shown: {len(invalid)} invalid spec file(s) in {folder} ({', '.join(p.name for p in invalid)}). "
        "Airflow's Dags page names each mistake (the import error of mlops_pipeline_specs.py), "
        "and so does airflow-mlops validate."
        if invalid
        else ""
    )
    if not specs:
        return [], (
            f"No pipeline specs in {folder}. Put spec YAML files there (see dags/pipelines/ in the repository) "
            f"or set [mlops] specs_folder. {notice}"
        ).strip()
    return [PipelineSources(s) for s in specs], notice


def _chosen(sources: list[PipelineSources], name: str | None, notice: str) -> tuple[PipelineSources | None, str]:
    """The pipeline named ``name`` (the first one when none is named), and the page's notice."""
    if not name:
        return (sources[0] if sources else None), notice
    found = next((s for s in sources if s.name == name), None)
    if found is None and sources:
        names = ", ".join(s.name for s in sources)
        return None, f"No pipeline {name!r} in the specs folder; pick one of {names}."
    return found, notice


def _trace_page(chosen: PipelineSources, request_id: str, notice: str) -> tuple[list[Any], list[Any], str]:
    """The chain of ``request_id`` (if given) and the newest requests to pick from."""
    from airflow_mlops.core.lineage import TraceNotFoundError
    from airflow_mlops.ui import views

    steps: list[Any] = []
    recent: list[Any] = []
    try:
        recent = chosen.newest_requests(limit=10)
    except Exception as err:
        if "does not exist" in str(err):
            notice = f"{chosen.name} has served no prediction yet: {_how_to_serve(chosen)}."
        else:
            hint = f"Check the {chosen.spec.serving.log_conn_id} connection."
            notice = views.failure("the prediction log", err, hint)
        return steps, recent, notice
    if not recent and not request_id:
        notice = f"No prediction of {chosen.model} is logged yet: {_how_to_serve(chosen)}, then trace one."
    if request_id:
        try:
            steps = views.trace_chain(chosen, request_id)
        except TraceNotFoundError as err:
            notice = f"{err}. Pick one of the newest requests below."
        except Exception as err:
            notice = views.failure("the trace", err, "Check the MLflow and prediction-log connections.")
    return steps, recent, notice


router = APIRouter()
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))


def _how_to_serve(chosen: PipelineSources) -> str:
    """What puts predictions in the log at the pipeline's level."""
    if chosen.spec.level == 0:
        return "Level 0 registers no model, so nothing is served (from `level: 1` a champion can be)"
    if chosen.spec.level < 3:
        return (
            f"serve the champion with `airflow-mlops serve` after `{chosen.release_dag}` promotes one, and send traffic"
        )
    return f"`{chosen.train_dag}` deploys the champion to the model server; send it traffic"


def code_spans(text: str) -> Markup:
    """``text`` escaped, its `backquoted` parts (DAG ids, spec keys) as ``<code>``."""
    parts = str(escape(text)).split("`")
    if len(parts) % 2 == 0:  # an unpaired backquote: left as it is
        return Markup(escape(text))
    return Markup("".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts)))


TEMPLATES.env.filters["code_spans"] = code_spans
TEMPLATES.env.filters["when"] = views.when


def page(request: Request, template: str, tab: str, **context: Any) -> HTMLResponse:
    """Render one page of the MLOps tabs."""
    return TEMPLATES.TemplateResponse(request, template, {"tabs": TABS, "tab": tab, **context})


def not_found(request: Request) -> HTMLResponse:
    """The page a browser gets for a path of no page: where the pages are (links relative to the pages' root)."""
    root = str(request.scope.get("root_path", "")).rstrip("/") + "/"
    response = page(request, "not_found.html", "", path=request.url.path, base_href=root)
    response.status_code = 404
    return response


@router.get("/", include_in_schema=False)
def index() -> RedirectResponse:
    return RedirectResponse("pipelines")


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    if name == "plotly.min.js":
        path = plotly_js()
        if path is None:
            raise HTTPException(404, "plotly is not installed: pip install plotly (Evidently installs it)")
        return FileResponse(path, media_type="text/javascript")
    if name not in STATIC_FILES:
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(HERE / "static" / name, media_type=STATIC_FILES[name])


@router.get("/pipelines", response_class=HTMLResponse)
def pipelines(request: Request) -> HTMLResponse:
    sources, notice = _pipelines()
    cards, problems = [], []
    for source in sources:
        try:
            cards.append(views.pipeline_card(source))
        except Exception as err:
            problems.append(f"{source.name}: " + views.failure("its history", err, "Check its connections."))
    return page(request, "pipelines.html", "pipelines", cards=cards, notice=notice, problems=problems)


@router.get("/history", response_class=HTMLResponse)
def history(request: Request, pipeline: str | None = None, at: str | None = None) -> HTMLResponse:
    sources, notice = _pipelines()
    chosen, notice = _chosen(sources, pipeline, notice)
    data: dict[str, Any] = {"rows": [], "answer": None, "unread": False}
    if chosen is not None:
        moment = None
        try:
            moment = parse_time(at)
        except ValueError as err:  # the timeline still shows; only the question is refused
            notice = f"Time {at!r}: {err}. Use a date and time such as 2026-12-01T10:30 (UTC)."
        now = datetime.now(UTC)
        if moment is not None and moment > now:
            notice = f"{moment:%Y-%m-%d %H:%M:%S} UTC is still to come; the answer is for now."
            moment = now
        if moment is not None:
            at = f"{moment:%Y-%m-%dT%H:%M:%S}"  # what the form's datetime-local field can show (UTC)
        try:
            data = views.history(chosen, moment)
        except Exception as err:
            failed = views.failure("the ledger", err, "Check the spec's ledger connection or [mlops] ledger_url.")
            notice = f"{notice} {failed}".strip()
            data["unread"] = True  # the timeline is unknown, not empty: no "no ledger row yet" under the error
    return page(request, "history.html", "history", sources=sources, chosen=chosen, at=at or "", notice=notice, **data)


@router.get("/monitoring", response_class=HTMLResponse)
def monitoring(request: Request, pipeline: str | None = None) -> HTMLResponse:
    from airflow_mlops.ui.monitoring import charts

    sources, notice = _pipelines()
    chosen, notice = _chosen(sources, pipeline, notice)
    data: dict[str, Any] = {"points": {"drift": [], "quality": []}, "figures": {}, "verdicts": []}
    if chosen is not None:
        try:
            data = charts(chosen)
        except Exception as err:
            notice = views.failure("the monitor runs in MLflow", err, "Check the mlflow_default connection.")
    return page(request, "monitoring.html", "monitoring", sources=sources, chosen=chosen, notice=notice, **data)


def titled(html: str, title: str) -> str:
    """An Evidently report's HTML with a ``<title>`` (it has none, so a browser tab shows its URL)."""
    head, end = re.search(r"<head[^>]*>", html, flags=re.IGNORECASE), html.lower().find("</head>")
    if head is None or end < head.end() or "<title>" in html[head.end() : end].lower():
        return html
    return f"{html[: head.end()]}\n<title>{escape(title)}</title>{html[head.end() :]}"


def with_heading(html: str, title: str, back: str) -> str:
    """An Evidently report's HTML with a line above it: what it is, and a link back to the Monitoring page."""
    body = re.search(r"<body[^>]*>", html, flags=re.IGNORECASE)
    if body is None:
        return html
    line = (
        '<div style="font:14px system-ui,sans-serif;padding:8px 16px;border-bottom:1px solid #ddd">'
        f'<a href="{escape(back)}">&larr; Monitoring</a> · {escape(title)}</div>'
    )
    return f"{html[: body.end()]}{line}{html[body.end() :]}"


def _monitor_run(chosen: PipelineSources, run_id: str) -> Any:
    """The MLflow run ``run_id``; a 404 when the tracking store has no such run."""
    from mlflow.exceptions import MlflowException

    try:
        return chosen.mlflow.get_run(run_id)
    except MlflowException as err:
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):  # none, or no run id at all
            raise HTTPException(404, f"no MLflow run {run_id[:100]!r}") from err
        raise


@router.get("/report/{pipeline}/{run_id}/{monitor}")
def report(pipeline: str, run_id: str, monitor: str) -> Response:
    from airflow_mlops.ui.monitoring import REPORT_FILES

    sources, _ = _pipelines()
    chosen = next((s for s in sources if s.name == pipeline), None)
    if chosen is None or monitor not in REPORT_FILES:
        raise HTTPException(404, f"no pipeline {pipeline!r} or no monitor {monitor!r}")
    run = _monitor_run(chosen, run_id)
    if run.data.tags.get(tags.PIPELINE) != pipeline or run.data.tags.get(tags.MONITOR) != monitor:
        raise HTTPException(404, f"run {run_id} is not a {monitor} monitor run of {pipeline}")
    html = _report_html(chosen, run_id, monitor)
    title = f"{monitor.capitalize()} report · {pipeline} · {run.data.tags.get(tags.DECISION, '?')} · run {run_id[:12]}"
    back = f"../../../monitoring?pipeline={quote(pipeline)}"  # from /mlops/report/<pipeline>/<run>/<monitor>
    return HTMLResponse(with_heading(titled(html, title), title, back))


def _report_html(chosen: PipelineSources, run_id: str, monitor: str) -> str:
    """The monitor run's Evidently report, read through a temporary folder it leaves behind; 404 without one."""
    import tempfile

    from mlflow.exceptions import MlflowException

    from airflow_mlops.ui.monitoring import REPORT_FILES

    with tempfile.TemporaryDirectory(prefix="mlops-report-") as folder:
        try:
            path = chosen.mlflow.download_artifacts(run_id, REPORT_FILES[monitor], folder)
        except (MlflowException, OSError) as err:  # kept no report: an Evidently failure, a sample too small
            raise HTTPException(404, f"run {run_id} kept no {monitor} report ({type(err).__name__})") from err
        return Path(path).read_text(encoding="utf-8")


@router.get("/trace", response_class=HTMLResponse)
def trace(request: Request, pipeline: str | None = None, request_id: str | None = None) -> HTMLResponse:
    sources, notice = _pipelines()
    chosen, notice = _chosen(sources, pipeline, notice)
    steps: list[dict[str, Any]] = []
    recent: list[Any] = []
    if chosen is not None:
        steps, recent, notice = _trace_page(chosen, (request_id or "").strip(), notice)
    context = {"sources": sources, "chosen": chosen, "request_id": request_id or "", "steps": steps}
    return page(request, "trace.html", "trace", recent=recent, notice=notice, **context)


@router.get("/run", response_class=HTMLResponse)
def run_tab(request: Request, dag_id: str = "", run_id: str = "") -> HTMLResponse:
    run_id = run_id.replace(" ", "+")  # an unencoded '+' (manual__...+00:00) arrives as a space; run ids have none
    sources, notice = _pipelines()
    chosen, role = run_tabs.pipeline_of(sources, dag_id)
    data: dict[str, Any] = {}
    if not dag_id or not run_id:
        chosen, notice = None, "This page is a DAG run's MLOps tab: open a pipeline's DAG run and pick its MLOps tab."
    elif chosen is None or role is None:  # a specs folder that does not load says so first
        unknown = f"{dag_id} is not a DAG of a pipeline in the specs folder, so MLOps has nothing on this run."
        notice = notice if not sources and notice else f"{unknown} {notice}".strip()
    else:
        notice = ""  # the run's own pipeline loads: another file's mistake is the Pipelines page's news
        try:
            data = run_tabs.run_tab(chosen, role, dag_id, run_id)
        except Exception as err:
            notice = views.failure("this run's records", err, "Check the MLflow and ledger connections.")
    return page(request, "run.html", "", chosen=chosen, dag_id=dag_id, run_id=run_id, notice=notice, data=data)


@router.get("/api/scorecard")
def scorecard_api() -> JSONResponse:
    from airflow_mlops.assessment import assess

    sources, notice = _pipelines()
    return JSONResponse({"notice": notice, "scorecards": [assess(s).as_dict() for s in sources]})
