"""Exceptions raised by the provider, each naming what is wrong and where."""

from __future__ import annotations


class MlopsError(Exception):
    """Base class for every error raised by airflow-provider-mlops."""


class PipelineSpecError(MlopsError, ValueError):
    """A pipeline spec is invalid; the message names the field path, the expected and the found."""


class DatasetExtractionError(MlopsError):
    """Data could not be extracted from its source (bad query, missing table, empty result)."""


class QueryRejectedError(DatasetExtractionError):
    """Postgres refused the query itself (an unknown column or table, a type or syntax error): no retry helps."""


class SourceMismatchError(DatasetExtractionError):
    """The source lacks what the spec names (its timestamp column, a bind parameter): no retry helps."""


class EmptyExtractionError(DatasetExtractionError):
    """The source holds no rows for the run's window: the same window gives none on a retry."""


class DatasetValidationError(MlopsError):
    """An extracted dataset failed a validation check; nothing downstream may use it."""


class TrainingError(MlopsError):
    """A model could not be built or fitted."""


class MlflowUnavailableError(MlopsError):
    """The MLflow tracking server or registry could not be reached."""


class ModelRegistryError(MlopsError):
    """A registry operation was refused, or the registry does not define what is needed (version, alias, model)."""


class ModelVersionNotFoundError(ModelRegistryError):
    """The registry has no such model version: a wrong input, which no retry fixes."""


class TrainingRunNotFoundError(ModelRegistryError):
    """MLflow has no such run, or the run logged no model: a wrong input, which no retry fixes."""


class ServingError(MlopsError):
    """The model server's admin API refused a call or could not be reached."""


class ServingTimeoutError(ServingError):
    """The model server took the call but did not answer within the connection's ``timeout``."""


class WrongServerError(ServingError):
    """The connection's model server serves other registered models: a setting to change, not a retry."""


class DeploymentError(MlopsError):
    """A rollout step failed; traffic was left on the champion."""
