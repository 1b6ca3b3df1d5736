"""Options of a multi-model server: the CLI, the pool's bounds, the hook's paths (pure logic)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import pytest

from tests.support.mlflow_files import mlflow_tables_db

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(autouse=True)
def _store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sqlite:///x.db`` in the working folder, with MLflow's ``experiments`` table (serve checks for it)."""
    monkeypatch.chdir(tmp_path)
    mlflow_tables_db(tmp_path / "x.db")


def _args(*argv: str) -> argparse.Namespace:
    from airflow_mlops.serving.server import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--tracking-uri", "sqlite:///x.db", *argv])


def test_several_models_make_one_config_each_with_the_shared_options() -> None:
    from airflow_mlops.serving.server import configs_from_args, is_multi

    args = _args(
        "--model", "a", "--model", "b", "--model", "a", "--challenger-share", "0.2", "--max-loaded-models", "3"
    )
    assert is_multi(args)
    configs, settings = configs_from_args(args)
    assert [c.model_name for c in configs] == ["a", "b"]
    assert {c.challenger_share for c in configs} == {0.2}
    assert (settings.max_loaded, settings.max_memory_mb, settings.warmup) == (3, None, False)
    assert len({c.log_spool_dir for c in configs}) == 1  # one shared log, one spool folder


def test_one_model_stays_a_single_model_server() -> None:
    from airflow_mlops.serving.server import config_from_args, is_multi

    args = _args("--model", "a")
    assert not is_multi(args)
    assert config_from_args(args).model_name == "a"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--model", "a", "--model", "b", "--max-loaded-models", "0"],
            "--max-loaded-models: expected at least 1, found 0",
        ),
        (["--model", "a", "--model", "b", "--max-memory-mb", "-5"], "--max-memory-mb: expected a positive number"),
    ],
)
def test_bad_bounds_are_refused_naming_the_option(argv: list[str], message: str) -> None:
    from airflow_mlops.serving.server import configs_from_args

    with pytest.raises(SystemExit, match=message):
        configs_from_args(_args(*argv))


def test_a_model_served_twice_is_refused() -> None:
    from airflow_mlops.serving.config import ServingConfig
    from airflow_mlops.serving.model_pool import ModelPool

    configs = [ServingConfig(model_name=n, tracking_uri="sqlite:///x.db") for n in ("a", "b", "a")]
    with pytest.raises(ValueError, match="each model may be served once, found a more than once"):
        ModelPool(configs)


@pytest.mark.parametrize(
    ("prefix", "tag", "message"),
    [
        ("churn'", None, 'model prefix: "churn\'" holds "\'"'),
        ("50%", None, "model prefix: '50%' holds '%'"),
        (None, "team", "model tag: expected KEY=VALUE, found 'team'"),
    ],
)
def test_registry_filters_refuse_what_they_cannot_quote(prefix: str | None, tag: str | None, message: str) -> None:
    from airflow_mlops.serving.config import ServingConfig
    from airflow_mlops.serving.models import registered_model_names

    config = ServingConfig(model_name="models", tracking_uri="sqlite:///x.db")
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        registered_model_names(config, prefix=prefix, tag=tag)


def test_hook_and_trigger_address_one_model() -> None:
    from airflow_mlops.hooks.serving import ServingHook, model_prefix
    from airflow_mlops.triggers.serving import ServingReadyTrigger

    assert model_prefix(None) == ""
    assert model_prefix("churn live/2") == "/models/churn%20live%2F2"
    assert ServingHook("conn", model="churn").prefix == "/models/churn"
    trigger = ServingReadyTrigger(serving_conn_id="conn", expected={"challenger": "2"}, model="churn")
    path, kwargs = trigger.serialize()
    assert kwargs["model"] == "churn"
    assert ServingReadyTrigger(**kwargs).hook.prefix == "/models/churn"


@pytest.mark.parametrize("shared", [True, False])
def test_spec_shared_server_points_rollouts_and_the_ab_test_at_the_model(shared: bool) -> None:
    """``serving.shared_server`` makes the Level 3 DAGs talk to ``/models/{registered model}/...``."""
    from airflow_mlops.factories import build_pipeline
    from airflow_mlops.spec import PipelineSpec
    from tests.support.specs import spec_dict

    spec = PipelineSpec.from_dict(spec_dict(level=3, serving={"shared_server": shared}))
    tasks = {task.task_id: task for dag in build_pipeline(spec) for task in dag.tasks}
    prefix = f"/models/{spec.registered_model_name}" if shared else ""
    for task_id in ("start_ab_test", "deploy_promote_first", "deploy_promote"):
        assert tasks[task_id].hook.prefix == prefix, task_id
    assert tasks["analyse"].serving_hook.prefix == prefix
    promotions = [t for dag in build_pipeline(spec) for t in dag.tasks if t.task_id in ("promote_first", "promote")]
    assert len(promotions) == 3  # the gate's first promotion, the A/B decision's, a person's
    assert {t.serving_model for t in promotions} == {spec.registered_model_name if shared else None}
