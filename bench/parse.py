"""DAG parse-time benchmark: the Level 2 example DAG file against a trivial one-task DAG file.

What it measures, in one run:

* **cold process** (the headline figure): wall time of a fresh ``python`` process that parses the DAG
  file with ``runpy.run_path``, i.e. interpreter start + Airflow import + our imports + DAG
  building, the cost a cold parse (or an Airflow 3 worker starting a task) pays. The two files are
  run interleaved (a, b, a, b, ...) so machine load drifts hit both alike; CPU time (user + sys)
  of the children is shown as well because it is less sensitive to a busy machine.
* **warm fork**: the dag-processor way: a parent with Airflow already imported (plus the
  ``airflow.*`` modules the file names, as ``[dag_processor] parsing_pre_import_modules`` does)
  forks a child per parse; the child's time to run the file.
* **warm in-process re-parse**: running the file again in that warm parent, with every module
  already imported (pure DAG-building cost).

File (a) is a temp copy of ``dags/mlops_pipelines.py`` with only ``pipelines/churn_files.yaml`` and its
``data/`` folder; file (b) is a DAG with one ``EmptyOperator`` written by this script. After parsing
(a) it counts the heavy modules (mlflow, evidently, sklearn, pandas, numpy, scipy) in ``sys.modules``.

The last two lines are ``heavy_modules: <n> (target == 0)`` and ``parse_ratio: <median(a)/median(b)>
(target <= 1.10)`` on cold-process wall time.

Run from the repository root::

    .venv/bin/python bench/parse.py            # 9 interleaved runs
    .venv/bin/python bench/parse.py --runs 21

Only the standard library and Airflow are used. Airflow runs with a throw-away ``AIRFLOW_HOME``; byte
code is cached in a throw-away folder (``--no-bytecode-cache`` keeps the caller's settings).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("mlflow", "evidently", "sklearn", "pandas", "numpy", "scipy")

TRIVIAL_DAG = '''\
"""A trivial DAG: one task, no schedule."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("trivial", schedule=None, start_date=datetime(2025, 1, 1, tzinfo=UTC), catchup=False) as dag:
    EmptyOperator(task_id="noop")
'''

# Runs in a fresh interpreter: nothing is imported before the DAG file.
CHILD = f"""\
import json, runpy, sys
namespace = runpy.run_path(sys.argv[1], run_name="__dag_file__")
from airflow.sdk import DAG
dags = sum(isinstance(v, DAG) for v in namespace.values())
print(json.dumps({{"dags": dags, "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


def make_dag_files(root: Path) -> tuple[Path, Path]:
    """Write the Level 2 folder (a) and the trivial folder (b) under ``root``; return both files."""
    level2 = root / "level2"
    (level2 / "pipelines").mkdir(parents=True)
    shutil.copy(REPO / "dags" / "mlops_pipelines.py", level2 / "mlops_pipelines.py")
    shutil.copy(REPO / "dags" / "pipelines" / "churn_files.yaml", level2 / "pipelines" / "churn_files.yaml")
    shutil.copytree(REPO / "dags" / "pipelines" / "data", level2 / "pipelines" / "data")
    trivial = root / "trivial"
    trivial.mkdir()
    (trivial / "trivial_dag.py").write_text(TRIVIAL_DAG, encoding="utf-8")
    return level2 / "mlops_pipelines.py", trivial / "trivial_dag.py"


def cold_parse(path: Path, env: dict[str, str]) -> tuple[float, float, dict[str, object]]:
    """Parse ``path`` in a fresh process; return (wall s, child CPU s, child report)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"parsing {path} failed:\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(proc.stdout.strip().splitlines()[-1])


def forked_parse(path: Path) -> float:
    """Fork this (warm) process, parse ``path`` in the child; return the child's parse time."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        code = 0
        try:
            start = time.perf_counter()
            runpy.run_path(str(path), run_name="__dag_file__")
            os.write(write_fd, repr(time.perf_counter() - start).encode())
        except BaseException as err:  # report and leave, never return into the parent's code
            os.write(write_fd, f"error {err!r}".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    if answer.startswith("error"):
        raise SystemExit(f"parsing {path} in a forked child failed: {answer}")
    return float(answer)


def in_process_parse(path: Path) -> float:
    """Parse ``path`` in this process (modules stay imported between calls)."""
    start = time.perf_counter()
    runpy.run_path(str(path), run_name="__dag_file__")
    return time.perf_counter() - start


def p90(values: list[float]) -> float:
    if len(values) < 2:
        return max(values)
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def line(label: str, values: list[float], cpu: list[float] | None = None) -> str:
    text = f"  {label:<8} median {statistics.median(values):8.3f} s   p90 {p90(values):8.3f} s"
    if cpu:
        text += f"   cpu median {statistics.median(cpu):6.3f} s"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="interleaved runs per file (default 9)")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep the caller's byte-code settings (e.g. PYTHONDONTWRITEBYTECODE=1: recompile every parse)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    scratch = Path(tempfile.mkdtemp(prefix="mlops-parse-bench-"))
    try:
        # A private Airflow home, set before Airflow is imported here or in any child.
        os.environ["AIRFLOW_HOME"] = str(scratch / "airflow_home")
        os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        os.environ.setdefault("AIRFLOW__MLOPS__STORAGE_URI", f"file://{scratch / 'storage'}")
        Path(os.environ["AIRFLOW_HOME"]).mkdir()
        if not args.no_bytecode_cache:
            # Deployed installs (pip in the Docker image) have .pyc files. A venv without them, run under
            # PYTHONDONTWRITEBYTECODE=1, recompiles Airflow and src/ in every process (~2 s CPU).
            # Cache byte code in the scratch folder instead (the repo and the venv stay untouched).
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
            os.environ["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
            sys.dont_write_bytecode = False
            sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"]
        env = dict(os.environ)
        level2, trivial = make_dag_files(scratch)
        files = {"level2": level2, "trivial": trivial}

        # Warm-up (untimed): writes airflow.cfg, fills the byte-code cache.
        for path in files.values():
            cold_parse(path, env)

        wall: dict[str, list[float]] = {name: [] for name in files}
        cpu: dict[str, list[float]] = {name: [] for name in files}
        dags: dict[str, int] = {}
        heavy: set[str] = set()
        for _ in range(args.runs):
            for name, path in files.items():
                elapsed, used, report = cold_parse(path, env)
                wall[name].append(elapsed)
                cpu[name].append(used)
                dags[name] = int(report["dags"])  # type: ignore[call-overload]
                if name == "level2":
                    heavy.update(report["heavy"])  # type: ignore[arg-type]

        # Warm parent, as the dag processor: Airflow imported, the files' airflow.* imports pre-imported.
        import airflow.dag_processing.processor  # noqa: F401
        import airflow.sdk  # noqa: F401
        from airflow.utils.file import iter_airflow_imports

        for path in files.values():
            for module in iter_airflow_imports(str(path)):
                __import__(module)
        warm: dict[str, list[float]] = {name: [] for name in files}
        for _ in range(args.runs):
            for name, path in files.items():
                warm[name].append(forked_parse(path))
        reparse: dict[str, list[float]] = {name: [] for name in files}
        for path in files.values():
            in_process_parse(path)  # first parse imports the modules; not counted
        for _ in range(args.runs):
            for name, path in files.items():
                reparse[name].append(in_process_parse(path))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    from airflow import __version__ as airflow_version

    print(
        f"parse benchmark: {args.runs} interleaved runs; Python {platform.python_version()}, "
        f"Airflow {airflow_version}, {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.2f}, "
        f"byte-code cache {'as inherited' if args.no_bytecode_cache else 'on'}"
    )
    print(
        f"(a) level2 = mlops_pipelines.py + churn_files.yaml ({dags['level2']} DAGs); "
        f"(b) trivial = 1 EmptyOperator ({dags['trivial']} DAG)"
    )
    print("cold process (fresh python, runpy.run_path), wall:")
    for name in files:
        print(line(name, wall[name], cpu[name]))
    print("warm fork (Airflow pre-imported in the parent, parse in a forked child):")
    for name in files:
        print(line(name, warm[name]))
    print("warm in-process re-parse (all modules already imported):")
    for name in files:
        print(line(name, reparse[name]))
    cpu_ratio = statistics.median(cpu["level2"]) / statistics.median(cpu["trivial"])
    warm_extra = statistics.median(warm["level2"]) - statistics.median(warm["trivial"])
    print(f"cpu_ratio: {cpu_ratio:.3f}; warm fork extra for level2: {warm_extra * 1000:.0f} ms")
    print(f"heavy modules after parsing level2: {', '.join(sorted(heavy)) or 'none'}")
    ratio = statistics.median(wall["level2"]) / statistics.median(wall["trivial"])
    print(f"heavy_modules: {len(heavy)} (target == 0)")
    print(f"parse_ratio: {ratio:.3f} (target <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
