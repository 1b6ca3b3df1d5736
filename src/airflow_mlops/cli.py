"""``airflow-mlops``: command-line entry point of the provider."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_mlops.core.maturity import Scorecard


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``validate``, ``trace``, ``assess`` and ``serve`` (the demo is ``python -m demo`` in the repository)."""
    parser = argparse.ArgumentParser(prog="airflow-mlops", description="airflow-provider-mlops tools")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check pipeline spec files with the rules of the DAG parse")
    validate.add_argument("paths", nargs="+", metavar="PATH", help="spec files, or folders of *.yaml/*.yml specs")
    validate.add_argument(
        "--build",
        action="store_true",
        help="also build each spec's estimator as train does (imports scikit-learn): a misspelled parameter or an "
        "estimator that does not fit the task fails here",
    )
    validate.add_argument(
        "--data",
        action="store_true",
        help="also read each spec's source as the extract task does (every row; Postgres through its Airflow "
        "connection) and run the validate task's data checks: a missing column, a null label, a numeric column "
        "made text fail here",
    )
    trace = commands.add_parser("trace", help="walk a served prediction back to its model, run and data")
    trace.add_argument("request_id", help="the request id of a served answer (or batch-... of a batch prediction)")
    trace.add_argument("--dsn", required=True, help="libpq connection string of the prediction log database")
    trace.add_argument("--tracking-uri", required=True, help="MLflow tracking URI")
    trace.add_argument("--registry-uri", default=None, help="MLflow registry URI (default: tracking URI)")
    trace.add_argument("--ledger-url", default=None, help="SQLAlchemy URL of the promotion ledger")
    trace.add_argument(
        "--log-table", default=None, help="the prediction log table (serving.log_table; default mlops_prediction_log)"
    )
    trace.add_argument("--batch-table", default=None, help="table of batch predictions, for ids starting with batch-")
    _add_assess(commands)
    from airflow_mlops.serving.server import add_arguments as add_serve_arguments

    serve = commands.add_parser("serve", help="serve a registered model's champion and challenger over HTTP")
    add_serve_arguments(serve)
    args = parser.parse_args(argv)

    if args.command == "serve":
        return _serve(args)
    if args.command == "validate":
        return _validate(args.paths, build=args.build, data=args.data)
    if args.command == "assess":
        return _assess(args)
    return _trace(args)


def _validate(paths: list[str], *, build: bool = False, data: bool = False) -> int:
    """One line per error (``file: field: expected ..., found ...``); exit 1: a spec is invalid, 2: none found."""
    from airflow_mlops.spec_files import check_spec_files

    named = _named_files(paths)
    if named is None:
        return 2
    files, unread = named
    checked = check_spec_files(files)
    for path in unread:
        found = path.suffix or "no suffix"
        print(f"{path}: expected a *.yaml or *.yml file, found {found}: the DAG parse reads no other")
    for line in checked.error_lines():
        print(line)
    unbuilt = _estimator_errors(checked.specs, checked.origins) if build else {}
    for line in unbuilt.values():
        print(line)
    bad_data = _data_errors(checked.specs, checked.origins) if data else {}
    for lines in bad_data.values():
        print("\n".join(lines))
    for line in checked.note_lines():  # valid, but a section its level ignores: said, not failed
        print(line)
    failed = set(unbuilt) | set(bad_data)
    invalid = len(checked.errors) + len(unread) + len(failed)
    print(f"validate: {len(checked.specs) - len(failed)} valid, {invalid} invalid spec file(s)")
    return 1 if invalid else 0


def _named_files(paths: list[str]) -> tuple[list[Path], list[Path]] | None:
    """The spec files the paths name, and the files named that no DAG folder would read; ``None``: nothing to do."""
    from airflow_mlops.spec_files import SPEC_SUFFIXES, spec_paths

    files: list[Path] = []
    unread: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            files += spec_paths(given)
        elif not given.exists() and not given.is_symlink():
            print(f"{given}: no such file or folder")
            return None
        elif given.suffix.lower() in SPEC_SUFFIXES:
            files.append(given)
        else:
            unread.append(given)
    if not files and not unread:
        print(f"validate: no *.yaml or *.yml spec file in {', '.join(paths)}")
        return None
    return files, unread


def _data_errors(specs: list[Any], origins: dict[str, Any]) -> dict[str, list[str]]:
    """Spec file -> an error line per data check its source fails (or the reason it could not be read)."""
    import pandas as pd

    from airflow_mlops.core.validation import validate_frame
    from airflow_mlops.hooks.source import open_source

    found: dict[str, list[str]] = {}
    for spec in specs:
        origin = str(origins[spec.name])
        try:
            with open_source(spec.source) as reader:
                frame = pd.concat([pd.DataFrame(), *reader.chunks(None)], ignore_index=True)
        except Exception as err:  # a missing file, a refused connection, a mismatched query: one line
            found[origin] = [f"{origin}: source: {type(err).__name__}: {' '.join(str(err).split())[:500]}"]
            continue
        report = validate_frame(frame, spec)
        if not report.ok:
            where = f"{origin}: data ({report.rows} rows of {spec.source.describe()})"
            found[origin] = [f"{where}: {failure}" for failure in report.failures]
    return found


def _estimator_errors(specs: list[Any], origins: dict[str, Any]) -> dict[str, str]:
    """Spec file -> an error line, for each spec whose estimator cannot be built as ``train`` builds it.

    scikit-learn is imported.

    The DAG parse cannot check this (DAG files import no scikit-learn); ``validate --build`` can, so
    a misspelled parameter or a regressor for a classification task fails there, not in a run.
    """
    from airflow_mlops.core.training import configured_estimator
    from airflow_mlops.exceptions import TrainingError

    lines = {}
    for spec in specs:
        origin = str(origins[spec.name])
        try:
            configured_estimator(spec)
        except TrainingError as err:
            lines[origin] = f"{origin}: {err}"
        except Exception as err:  # a declared factory module that fails to import or to run: still one line
            lines[origin] = (f"{origin}: estimator.class: building {spec.estimator.class_path} failed: "
                             f"{type(err).__name__}: {err}")  # fmt: skip
    return lines


def _serve(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        print(f"serve: {err}; install the serving extra: pip install 'airflow-provider-mlops[serving]'")
        return 2
    from airflow_mlops.serving.server import serve_from_args

    serve_from_args(args)
    return 0


def _trace(args: argparse.Namespace) -> int:
    from airflow_mlops.trace_command import run_trace

    return run_trace(args)


# --- assess: the maturity scorecard ------------------------------------------------------------


EVIDENCE_UNREADABLE = 3  # assess's exit code when a scorecard could not read some of its evidence


def _add_assess(commands: Any) -> None:
    assess = commands.add_parser(
        "assess",
        help="grade each pipeline against the MLOps maturity levels from evidence",
        epilog="exit codes: 0 every scorecard read its evidence; 1 no valid spec; 2 no such folder or pipeline;"
        " 3 some evidence could not be read (the '!' lines)",
    )
    assess.add_argument("pipelines", nargs="*", help="pipeline names (default: every spec in the specs folder)")
    assess.add_argument(
        "--specs",
        type=Path,
        default=None,
        help="folder of pipeline specs (default: [mlops] specs_folder, else the dags folder's pipelines/)",
    )
    assess.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _assess(args: argparse.Namespace) -> int:
    import json

    from airflow_mlops.assessment import assess
    from airflow_mlops.pipeline_sources import PipelineSources, specs_folder
    from airflow_mlops.spec_files import check_spec_files, spec_paths

    folder = args.specs or specs_folder()
    if not folder.is_dir():
        found = "a file" if folder.exists() else "no such folder"
        hint = "" if args.specs else " (give --specs FOLDER)"
        print(f"assess: {folder}: expected a folder of pipeline specs, found {found}{hint}", file=sys.stderr)
        return 2
    checked = check_spec_files(spec_paths(folder))
    for line in checked.error_lines():  # an invalid spec is named, not skipped in silence; stdout stays the cards
        print(f"assess: skipped {line}", file=sys.stderr)
    known = sorted(s.name for s in checked.specs)
    unknown = [name for name in args.pipelines if name not in known]
    if unknown:  # a mistyped name is not left out in silence
        found = ", ".join(known) or "none"
        print(f"assess: no valid pipeline spec named {', '.join(unknown)} in {folder}; found: {found}", file=sys.stderr)
        return 2
    specs = sorted((s for s in checked.specs if not args.pipelines or s.name in args.pipelines), key=lambda s: s.name)
    if not specs:
        named = " named " + ", ".join(args.pipelines) if args.pipelines else ""
        print(f"assess: no valid pipeline specs{named} in {folder}", file=sys.stderr)
        return 1
    cards = [assess(PipelineSources(spec)) for spec in specs]
    unreadable = EVIDENCE_UNREADABLE if any(card.partial for card in cards) else 0
    if args.json:
        print(json.dumps([card.as_dict() for card in cards], indent=2, default=str))
        return unreadable
    _print_cards(cards)
    return unreadable


def _print_cards(cards: list[Scorecard]) -> None:
    for card in cards:
        print(card.headline)
        for p in card.practices:
            print(f"  {'✔' if p.met else '✘'} L{p.level} {p.title:<48} {p.evidence}")
        for problem in card.problems:
            print(f"  ! {problem}")
        print()
    if any(card.partial for card in cards):
        print(
            "assess: '!' marks evidence it could not read, so practices may show ✘ for want of it; run it"
            " with the Airflow configuration the pipelines run under (connections, metadata database)",
            file=sys.stderr,
        )


if __name__ == "__main__":
    raise SystemExit(main())
