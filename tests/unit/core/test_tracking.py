"""Tracking: logging and loading a model keeps skops' module scan from flooding the task log."""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

import pytest

from airflow_mlops.core.tracking import (
    load_model,
    load_packaged_model,
    log_training_run,
    quiet_pip_unpinned_notice,
    quiet_skops_module_scan,
    trusted_types,
)
from airflow_mlops.core.training import fit_model, split_frame
from airflow_mlops.hooks.mlflow import MlflowHook
from airflow_mlops.refs import DatasetRef
from airflow_mlops.spec import PipelineSpec
from tests.support.specs import spec_dict

if TYPE_CHECKING:
    import pandas as pd

SHIM_MESSAGE = "The `airflow."


def _airflow_shims_loaded() -> None:
    """Import the Airflow modules that answer any attribute with a DeprecatedImportWarning, as a task has them."""
    import airflow.utils.timezone
    import airflow.utils.trigger_rule  # noqa: F401


class _Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _shim_warnings(recorded: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in recorded if str(w.message).startswith(SHIM_MESSAGE)]


@pytest.mark.usefixtures("storage")
def test_logging_and_loading_a_model_draws_no_airflow_deprecation_warnings(
    mlflow_conn: str, customers_frame: pd.DataFrame
) -> None:
    """skops walks sys.modules to name ufuncs; Airflow's shims must not turn that into ~1,160 warnings."""
    _airflow_shims_loaded()
    spec = PipelineSpec.from_dict(spec_dict())
    split = split_frame(customers_frame.head(400), spec)
    model = fit_model(spec, split)
    dataset = DatasetRef(uri="file:///tmp/snap.parquet", digest="d" * 64, rows=400, columns={}, source="test")
    seen, environment = _Seen(), logging.getLogger("mlflow.utils.environment")
    environment.addHandler(seen)
    with MlflowHook().activate(), warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        logged = log_training_run(
            experiment="quiet",
            run_name="quiet",
            tags={},
            params={},
            model=model,
            x_train=split.x_train,
            dataset=dataset,
            metrics={"train_roc_auc": 0.9},
        )
        load_model(logged.model_uri)
        load_packaged_model(logged.model_uri)
    environment.removeHandler(seen)
    assert _shim_warnings(recorded) == []
    assert not [m for m in seen.messages if m.startswith("Failed to resolve installed pip version")]


def test_the_pip_unpinned_notice_alone_is_dropped_and_only_in_its_block() -> None:
    seen, environment = _Seen(), logging.getLogger("mlflow.utils.environment")
    environment.addHandler(seen)
    try:
        with quiet_pip_unpinned_notice():
            environment.warning("Failed to resolve installed pip version. ``pip`` will be added unpinned.")
            environment.warning("Encountered an unexpected error while inferring pip requirements")
        environment.warning("Failed to resolve installed pip version. (outside)")
    finally:
        environment.removeHandler(seen)
    assert seen.messages == [
        "Encountered an unexpected error while inferring pip requirements",
        "Failed to resolve installed pip version. (outside)",
    ]


def test_the_filter_is_scoped_to_skops() -> None:
    """Our warnings and Airflow's (raised from anywhere but skops) still show, inside the block and after it.

    The filter is kept after the block (``catch_warnings`` is not thread-safe), and it is added once.
    """
    import airflow.utils.timezone as shim

    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        with quiet_skops_module_scan():
            warnings.warn("our own notice", UserWarning, stacklevel=1)
            warnings.warn("our own deprecation", FutureWarning, stacklevel=1)
            getattr(shim, "utcnow", None)  # the shim warns about a caller outside skops
        assert [str(w.message) for w in recorded][:2] == ["our own notice", "our own deprecation"]
        assert len(_shim_warnings(recorded)) == 1
        recorded.clear()
        getattr(shim, "utcnow", None)
        assert len(_shim_warnings(recorded)) == 1
        with quiet_skops_module_scan(), quiet_skops_module_scan():
            pass
        assert sum(f[2] is FutureWarning and "skops" in str(f[3]) for f in warnings.filters) == 1


def test_trusted_types_alone_is_quiet(customers_frame: pd.DataFrame) -> None:
    """The skops dump behind ``trusted_types`` scans sys.modules too, and stays quiet."""
    _airflow_shims_loaded()
    spec = PipelineSpec.from_dict(spec_dict())
    model = fit_model(spec, split_frame(customers_frame.head(300), spec))
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        assert trusted_types(model)
    assert _shim_warnings(recorded) == []
