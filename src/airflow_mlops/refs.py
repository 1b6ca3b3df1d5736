"""Small JSON references passed between tasks through XCom.

Data frames and models never travel through XCom: tasks exchange these refs, which point at a
snapshot in object storage or at a run and a version in MLflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Self


@dataclass(frozen=True)
class _Ref:
    """Shared XCom round trip for the reference types."""

    def as_xcom(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict for XCom."""
        return asdict(self)

    @classmethod
    def from_xcom(cls, value: dict[str, Any] | Self) -> Self:
        """Build the ref back from what :meth:`as_xcom` returned; unknown keys are ignored."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise TypeError(f"{cls.__name__}: expected a dict from XCom, found {type(value).__name__}")
        names = {f.name for f in fields(cls)}
        missing = [f.name for f in fields(cls) if f.name not in value and _required(f)]
        if missing:
            raise ValueError(f"{cls.__name__}: XCom value lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in value.items() if k in names})


def _required(f: Any) -> bool:
    from dataclasses import MISSING

    return bool(f.default is MISSING and f.default_factory is MISSING)


@dataclass(frozen=True)
class DatasetRef(_Ref):
    """A versioned dataset snapshot.

    :param uri: where the parquet snapshot lives (an object storage URI).
    :param digest: content digest of the rows, independent of row order.
    :param rows: number of rows.
    :param columns: column name to pandas dtype string.
    :param source: human-readable description of the origin (table, query or file URI).
    :param as_of: upper bound of the timestamp column used for the extraction, ISO 8601, if any.
    :param watermark: largest timestamp value seen in the snapshot, ISO 8601, if any.
    """

    uri: str
    digest: str
    rows: int
    columns: dict[str, str]
    source: str
    as_of: str | None = None
    watermark: str | None = None


@dataclass(frozen=True)
class ModelRef(_Ref):
    """A trained model in MLflow.

    :param name: registered model name it belongs to.
    :param run_id: MLflow run that produced it.
    :param model_uri: URI loadable with ``mlflow.pyfunc.load_model``.
    :param metrics: metrics logged for it so far.
    :param version: registry version, once registered.
    :param dataset_digest: digest of the training snapshot.
    :param experiment_id: MLflow experiment holding the run.
    """

    name: str
    run_id: str
    model_uri: str
    metrics: dict[str, float] = field(default_factory=dict)
    version: str | None = None
    dataset_digest: str | None = None
    experiment_id: str | None = None
