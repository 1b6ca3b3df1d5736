"""The README stays short, its links and spec example work, and docs/ builds with a strict link check."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from airflow_mlops.factories import build_pipeline
from airflow_mlops.spec import PipelineSpec

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(markdown: str) -> set[str]:
    """Heading ids as mkdocs' toc extension makes them (lower case, punctuation dropped, spaces to -)."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", re.sub(r"```.*?```", "", markdown, flags=re.S), flags=re.M)
    return {re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", h).strip().lower()) for h in headings}


def test_readme_is_short() -> None:
    assert len(README) < 12_000


def test_readme_links_resolve() -> None:
    local = [link for link in LINK.findall(README) if "://" not in link]
    assert local, "the README links to docs/"
    for link in local:
        path, _, anchor = link.partition("#")
        target = REPO / path
        assert target.exists(), f"README links to {link}, which does not exist"
        if anchor:
            assert anchor in _anchors(target.read_text(encoding="utf-8")), f"README links to a missing anchor: {link}"


def test_readme_spec_example_builds_its_dags() -> None:
    example = re.search(r"```yaml\n(.*?)```", README, flags=re.S)
    assert example is not None
    spec = PipelineSpec.from_dict(yaml.safe_load(example.group(1)), origin="README.md")
    assert {dag.dag_id for dag in build_pipeline(spec)} == {"churn_train", "churn_promote", "churn_watch"}


def test_docs_build_strictly(tmp_path: Path) -> None:
    """``mkdocs build --strict`` fails on a missing page, a missing anchor or an unrecognised link."""
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
