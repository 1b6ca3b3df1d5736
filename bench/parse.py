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
(target <= 1.05, issue 14; 1.10 before)`` on cold-process wall time.

**Growth with the number of specs** (``--growth``, or ``--growth-only`` for this part alone): a temp
DAG folder holds the loader and N generated copies of ``pipelines/churn_files.yaml`` (renamed
``churn_files_000`` ...), for N = 10, 25, 50, 100. A fresh process imports Airflow and the provider
(the fixed cost, timed apart), then runs the loader; the loader's time divided by N is the parse time
per pipeline. A least-squares line through (N, time) gives the cost of one more spec; the ratio of
per-spec times at 100 and at 10 says whether the growth is linear (about 1.0; below 1.0 the first
spec paid a warm-up). Heavy modules are counted after the 100-spec parse.

Run from the repository root::

    .venv/bin/python bench/parse.py            # 9 interleaved runs
    .venv/bin/python bench/parse.py --runs 21
    .venv/bin/python bench/parse.py --growth-only --runs 3

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
from dataclasses import dataclass, field
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


# Runs in a fresh interpreter: imports timed apart from the loader's run.
GROWTH_CHILD = f"""\
import json, runpy, sys, time
start = time.perf_counter()
import airflow.sdk, airflow_mlops.factories
imported = time.perf_counter()
namespace = runpy.run_path(sys.argv[1], run_name="__dag_file__")
built = time.perf_counter()
from airflow.sdk import DAG
dags = sum(isinstance(v, DAG) for v in namespace.values())
print(json.dumps({{"imports": imported - start, "build": built - imported, "dags": dags,
                  "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""
GROWTH_SIZES = (10, 25, 50, 100)


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


def make_spec_folder(root: Path, count: int) -> Path:
    """A DAG folder with the loader and ``count`` renamed copies of ``churn_files.yaml``; return the loader."""
    folder = root / f"specs_{count:03d}"
    (folder / "pipelines").mkdir(parents=True)
    shutil.copy(REPO / "dags" / "mlops_pipelines.py", folder / "mlops_pipelines.py")
    shutil.copytree(REPO / "dags" / "pipelines" / "data", folder / "pipelines" / "data")
    template = (REPO / "dags" / "pipelines" / "churn_files.yaml").read_text(encoding="utf-8")
    if "name: churn_files\n" not in template:
        raise SystemExit("churn_files.yaml no longer has the line 'name: churn_files'")
    for index in range(count):
        spec = template.replace("name: churn_files\n", f"name: churn_files_{index:03d}\n", 1)
        (folder / "pipelines" / f"churn_files_{index:03d}.yaml").write_text(spec, encoding="utf-8")
    return folder / "mlops_pipelines.py"


def growth(scratch: Path, env: dict[str, str], runs: int) -> dict[int, dict[str, object]]:
    """Median import and loader times per folder size, interleaved over ``runs`` rounds."""
    loaders = {count: make_spec_folder(scratch, count) for count in GROWTH_SIZES}
    for loader in loaders.values():  # warm-up: byte-code cache, airflow.cfg
        subprocess.run([sys.executable, "-c", GROWTH_CHILD, str(loader)], env=env, capture_output=True, check=False)
    samples: dict[int, list[dict[str, object]]] = {count: [] for count in GROWTH_SIZES}
    for _ in range(runs):
        for count, loader in loaders.items():
            proc = subprocess.run(
                [sys.executable, "-c", GROWTH_CHILD, str(loader)], env=env, capture_output=True, text=True, check=False
            )
            if proc.returncode != 0:
                raise SystemExit(f"parsing {count} specs failed:\n{proc.stderr}")
            samples[count].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    summary: dict[int, dict[str, object]] = {}
    for count, reports in samples.items():
        summary[count] = {
            "imports": statistics.median(float(r["imports"]) for r in reports),  # type: ignore[arg-type]
            "build": statistics.median(float(r["build"]) for r in reports),  # type: ignore[arg-type]
            "dags": reports[-1]["dags"],
            "heavy": sorted({m for r in reports for m in r["heavy"]}),  # type: ignore[attr-defined]
        }
    return summary


def print_growth(summary: dict[int, dict[str, object]], runs: int) -> None:
    """The growth table, the least-squares slope and the per-spec ratio at 100 vs 10 specs."""
    print(f"growth: loader + N copies of churn_files.yaml, fresh process each, median of {runs} runs")
    print(f"  {'specs':>5} {'DAGs':>5} {'imports s':>10} {'loader s':>9} {'per spec ms':>12}")
    for count, row in summary.items():
        build = float(row["build"])  # type: ignore[arg-type]
        print(
            f"  {count:>5} {row['dags']:>5} {float(row['imports']):>10.3f} "  # type: ignore[arg-type]
            f"{build:>9.3f} {build / count * 1000:>12.1f}"
        )
    counts = list(summary)
    builds = [float(summary[c]["build"]) for c in counts]  # type: ignore[arg-type]
    slope, intercept = statistics.linear_regression(counts, builds)
    fitted = [intercept + slope * c for c in counts]
    residual = max(abs(b - f) / b for b, f in zip(builds, fitted, strict=True))
    first, last = counts[0], counts[-1]
    ratio = (builds[-1] / last) / (builds[0] / first)
    heavy = summary[last]["heavy"]
    print(f"  least squares: {slope * 1000:.1f} ms per extra spec, intercept {intercept * 1000:.0f} ms, "
          f"largest deviation from the line {residual:.1%}")  # fmt: skip
    print(f"per_spec_ratio_{last}_vs_{first}: {ratio:.3f} (1.0 = linear)")
    print(f"heavy_modules_after_{last}_specs: {len(heavy)} {heavy or ''}".rstrip())  # type: ignore[arg-type]


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


def private_environment(scratch: Path, *, bytecode_cache: bool) -> dict[str, str]:
    """A private Airflow home (set before Airflow is imported here or in any child); the child env."""
    os.environ["AIRFLOW_HOME"] = str(scratch / "airflow_home")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__MLOPS__STORAGE_URI", f"file://{scratch / 'storage'}")
    Path(os.environ["AIRFLOW_HOME"]).mkdir()
    if bytecode_cache:
        # Deployed installs (pip in the Docker image) have .pyc files. A venv without them, run under
        # PYTHONDONTWRITEBYTECODE=1, recompiles Airflow and src/ in every process (~2 s CPU).
        # Cache byte code in the scratch folder instead (the repo and the venv stay untouched).
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
        sys.dont_write_bytecode = False
        sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"]
    return dict(os.environ)


@dataclass
class Comparison:
    """Timings of the level2 and trivial files: cold wall/CPU, warm fork, in-process re-parse."""

    files: dict[str, Path]
    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    warm: dict[str, list[float]] = field(default_factory=dict)
    reparse: dict[str, list[float]] = field(default_factory=dict)
    dags: dict[str, int] = field(default_factory=dict)
    heavy: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for series in (self.wall, self.cpu, self.warm, self.reparse):
            series.update({name: [] for name in self.files})


def compare(scratch: Path, env: dict[str, str], runs: int) -> Comparison:
    """Time the Level 2 file against the trivial one, cold, warm-forked and re-parsed in-process."""
    level2, trivial = make_dag_files(scratch)
    result = Comparison({"level2": level2, "trivial": trivial})
    for path in result.files.values():  # warm-up (untimed): writes airflow.cfg, fills the byte-code cache
        cold_parse(path, env)
    for _ in range(runs):
        for name, path in result.files.items():
            elapsed, used, report = cold_parse(path, env)
            result.wall[name].append(elapsed)
            result.cpu[name].append(used)
            result.dags[name] = int(report["dags"])  # type: ignore[call-overload]
            if name == "level2":
                result.heavy.update(report["heavy"])  # type: ignore[arg-type]
    warm_parses(result, runs)
    return result


def warm_parses(result: Comparison, runs: int) -> None:
    """Forked-child parses from a warm parent, then in-process re-parses; appended to ``result``."""
    # Warm parent, as the dag processor: Airflow imported, the files' airflow.* imports pre-imported.
    import airflow.dag_processing.processor  # noqa: F401
    import airflow.sdk  # noqa: F401
    from airflow.utils.file import iter_airflow_imports

    for path in result.files.values():
        for module in iter_airflow_imports(str(path)):
            __import__(module)
    for _ in range(runs):
        for name, path in result.files.items():
            result.warm[name].append(forked_parse(path))
    for path in result.files.values():
        in_process_parse(path)  # the first in-process parse imports the modules; not counted
    for _ in range(runs):
        for name, path in result.files.items():
            result.reparse[name].append(in_process_parse(path))


def print_comparison(result: Comparison) -> None:
    """The three tables and the two target lines."""
    print(
        f"(a) level2 = mlops_pipelines.py + churn_files.yaml ({result.dags['level2']} DAGs); "
        f"(b) trivial = 1 EmptyOperator ({result.dags['trivial']} DAG)"
    )
    print("cold process (fresh python, runpy.run_path), wall:")
    for name in result.files:
        print(line(name, result.wall[name], result.cpu[name]))
    print("warm fork (Airflow pre-imported in the parent, parse in a forked child):")
    for name in result.files:
        print(line(name, result.warm[name]))
    print("warm in-process re-parse (all modules already imported):")
    for name in result.files:
        print(line(name, result.reparse[name]))
    cpu_ratio = statistics.median(result.cpu["level2"]) / statistics.median(result.cpu["trivial"])
    warm_extra = statistics.median(result.warm["level2"]) - statistics.median(result.warm["trivial"])
    print(f"cpu_ratio: {cpu_ratio:.3f}; warm fork extra for level2: {warm_extra * 1000:.0f} ms")
    print(f"heavy modules after parsing level2: {', '.join(sorted(result.heavy)) or 'none'}")
    ratio = statistics.median(result.wall["level2"]) / statistics.median(result.wall["trivial"])
    print(f"heavy_modules: {len(result.heavy)} (target == 0)")
    print(f"parse_ratio: {ratio:.3f} (target <= 1.05)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="interleaved runs per file (default 9)")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep the caller's byte-code settings (e.g. PYTHONDONTWRITEBYTECODE=1: recompile every parse)",
    )
    parser.add_argument("--growth", action="store_true", help="also time folders of 10, 25, 50 and 100 specs")
    parser.add_argument("--growth-only", action="store_true", help="only the 10 to 100 specs growth")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    scratch = Path(tempfile.mkdtemp(prefix="mlops-parse-bench-"))
    comparison, spread = None, None
    try:
        env = private_environment(scratch, bytecode_cache=not args.no_bytecode_cache)
        if not args.growth_only:
            comparison = compare(scratch, env, args.runs)
        if args.growth or args.growth_only:
            spread = growth(scratch, env, args.runs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    from airflow import __version__ as airflow_version

    print(
        f"parse benchmark: {args.runs} interleaved runs; Python {platform.python_version()}, "
        f"Airflow {airflow_version}, {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.2f}, "
        f"byte-code cache {'as inherited' if args.no_bytecode_cache else 'on'}"
    )
    if comparison is not None:
        print_comparison(comparison)
    if spread is not None:
        print_growth(spread, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
