"""Build a scikit-learn pipeline from a spec and a dataset schema, split, and fit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.core.importing import NESTED_ESTIMATOR_PARAMS, import_estimator, parse_allowed_modules
from airflow_mlops.core.overrides import check_overrides, closest_name
from airflow_mlops.core.validation import DATETIME_ADVICE, datetime_features, feature_columns
from airflow_mlops.exceptions import TrainingError
from airflow_mlops.settings import mlops_setting

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlops.spec import PipelineSpec

PARAM_TEXT_CHARS = 250  # a recorded parameter's text, cut (MLflow takes 6000)
PARAM_NAME_CHARS = 250  # MLflow's limit on a parameter's name
ESTIMATOR_CLASS_PARAM = "mlops.estimator_class"
_PARAM_NAME_REFUSED = re.compile(r"[^\w./\- :]")  # MLflow's rule for a parameter's name
_SECRET_NAME = re.compile(r"password|passwd|secret|token|api_?key|credential|dsn", re.IGNORECASE)


@dataclass
class Split:
    """Train and held-out parts of a dataset."""

    x_train: pd.DataFrame
    x_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


def split_frame(frame: pd.DataFrame, spec: PipelineSpec) -> Split:
    """The train and held-out parts: the newest rows by time, or a seeded random split.

    Out-of-time (``split.strategy: time``): the newest ``split.test_size`` share of rows by
    ``source.timestamp_column`` is held out, so a model is judged on rows newer than any it learnt
    from; rows without a time stay in the train part. Otherwise a seeded random split, stratified
    for classification.
    """
    from sklearn.model_selection import train_test_split

    features = feature_columns(spec, list(frame.columns))
    dated = datetime_features(frame, features)
    if dated:
        found = ", ".join(f"{column!r} ({what})" for column, what in dated.items())
        raise TrainingError(
            f"features: expected numeric or categorical columns, found dates in {found}; {DATETIME_ADVICE}"
        )
    x = prepare_features(frame[features])
    y = frame[spec.target]
    if splits_by_time(spec):
        return _split_by_time(frame, x, y, spec)
    stratify = y if spec.task == "classification" else None
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            x, y, test_size=spec.split.test_size, random_state=spec.split.seed, stratify=stratify
        )
    except ValueError as err:
        raise TrainingError(f"cannot split the dataset (test_size={spec.split.test_size}): {err}") from err
    return Split(x_train, x_test, y_train, y_test)


def describe_split(spec: PipelineSpec) -> str:
    """Which rows the held-out part is, in words for a log line and the ``mlops.test_split`` tag."""
    if splits_by_time(spec):
        return f"the newest by {spec.source.timestamp_column!r}"
    stratified = ", stratified" if spec.task == "classification" else ""
    return f"random, seed {spec.split.seed}{stratified}"


def splits_by_time(spec: PipelineSpec) -> bool:
    """True when the held-out part is the newest rows by ``source.timestamp_column`` (out-of-time)."""
    return spec.split.strategy == "time"


def _split_by_time(frame: pd.DataFrame, x: pd.DataFrame, y: pd.Series, spec: PipelineSpec) -> Split:
    import math

    column = spec.source.timestamp_column
    if column is None or column not in frame.columns:
        raise TrainingError(
            f"split.strategy: an out-of-time split orders rows by source.timestamp_column {column!r}, "
            f"which is not a column of the dataset ({len(frame.columns)} columns)"
        )
    order = time_order(frame[column], column)
    n_test = math.ceil(spec.split.test_size * len(frame))
    if n_test >= len(frame):
        raise TrainingError(
            f"cannot split the dataset (test_size={spec.split.test_size}): {len(frame)} rows leave none to train on"
        )
    train, test = order[: len(frame) - n_test], order[len(frame) - n_test :]
    y_train = y.iloc[train]
    if spec.task == "classification" and y_train.nunique() < 2:
        only = y_train.iloc[0].item() if hasattr(y_train.iloc[0], "item") else y_train.iloc[0]
        raise TrainingError(
            f"split.strategy: the rows before the newest {n_test} (by {column!r}) hold only one class of "
            f"{spec.target!r}, {only!r}; use split.strategy: random, or train on a longer period"
        )
    return Split(x.iloc[train], x.iloc[test], y_train, y.iloc[test])


def time_order(values: pd.Series, column: str) -> Any:
    """Row positions from oldest to newest by ``values`` (rows without a time first; ties keep their order).

    Datetime and numeric columns order as they are; text must read as ISO 8601 times.
    """
    import pandas as pd

    stamps = values.reset_index(drop=True)
    readable = pd.api.types.is_datetime64_any_dtype(stamps) or (
        pd.api.types.is_numeric_dtype(stamps) and not pd.api.types.is_bool_dtype(stamps)
    )
    if not readable:
        parsed = pd.to_datetime(stamps, utc=True, errors="coerce", format="ISO8601")
        unreadable = stamps[parsed.isna() & stamps.notna()]
        if len(unreadable):
            raise TrainingError(
                f"split.strategy: source.timestamp_column {column!r} orders the out-of-time split, but "
                f"{len(unreadable)} of its values are not times, e.g. {unreadable.iloc[0]!r} (row "
                f"{unreadable.index[0]}); use ISO 8601 text, a datetime or a number, or split.strategy: random"
            )
        stamps = parsed
    return stamps.sort_values(kind="stable", na_position="first").index.to_numpy()


def estimator_params(spec: PipelineSpec, model: Any) -> dict[str, Any]:
    """What a training run records of its estimator: the class the spec names and every parameter of it.

    The fitted estimator's own ``get_params()`` (scikit-learn's defaults, the spec's and the run's
    form's values alike), so a run says what was trained without the spec beside it; the class is
    :data:`ESTIMATOR_CLASS_PARAM` (an estimator may have a parameter named ``estimator``). A pipeline
    a factory built records its steps' parameters (``step__param``). A value that is no number is
    cut to :data:`PARAM_TEXT_CHARS` (a nested estimator is its class name); a parameter named like a
    secret is masked; characters MLflow refuses in a name become ``_``.
    """
    from sklearn.base import BaseEstimator
    from sklearn.pipeline import Pipeline

    wrapped = isinstance(model, Pipeline) and [name for name, _ in model.steps] == ["preprocess", "model"]
    params = model.named_steps["model"].get_params(deep=False) if wrapped else model.get_params(deep=True)
    recorded: dict[str, Any] = {ESTIMATOR_CLASS_PARAM: spec.estimator.class_path}
    for name, value in sorted(params.items()):
        key = _PARAM_NAME_REFUSED.sub("_", str(name))[:PARAM_NAME_CHARS]
        if key in recorded:
            continue
        if _SECRET_NAME.search(key):
            recorded[key] = "***"
        elif value is None or isinstance(value, int | float | bool):
            recorded[key] = value
        elif isinstance(value, BaseEstimator) or callable(value):
            recorded[key] = getattr(value, "__qualname__", type(value).__name__)
        else:
            recorded[key] = (value if isinstance(value, str) else repr(value))[:PARAM_TEXT_CHARS]
    return recorded


def build_model(spec: PipelineSpec, x: pd.DataFrame, overrides: dict[str, Any] | None = None) -> Any:
    """Instantiate the estimator; prepend preprocessing unless it is already a full Pipeline.

    Before anything is called the path passes the allow-list again (the spec may not have come
    through the parse check); the estimator is built from the spec's params, checked against the
    spec's task, and run-time ``overrides`` are applied with ``set_params`` only to parameters its
    ``get_params()`` knows, with JSON-typed values.
    """
    from sklearn.pipeline import Pipeline

    estimator = configured_estimator(spec, overrides)
    _seed(estimator, spec.split.seed)
    if isinstance(estimator, Pipeline):
        return estimator
    return Pipeline([("preprocess", build_preprocessor(x)), ("model", estimator)])


def configured_estimator(spec: PipelineSpec, overrides: dict[str, Any] | None = None) -> Any:
    """The spec's estimator, unfitted, checked against the task, with the run's ``overrides`` set.

    Cheap (nothing is fitted): the train DAG's first task calls it too, so a mistyped form fails
    before the extract. :raises TrainingError: naming the spec's or the form's mistake.
    """
    estimator = _estimator_from_spec(spec)
    _check_task(estimator, spec)
    try:
        _check_param_values(estimator)
    except ValueError as err:
        raise TrainingError(f"estimator.params for {spec.estimator.class_path}: {err}") from err
    if overrides:
        # the run's form, not the spec: say so, or a person looks for the mistake in the YAML
        try:
            estimator.set_params(**check_overrides(overrides, estimator.get_params(deep=True)))
        except ValueError as err:
            raise TrainingError(f"the run's {err} (of {spec.estimator.class_path}, not the spec's)") from err
        try:
            _check_param_values(estimator)
        except ValueError as err:
            raise TrainingError(f"the run's hyperparameters: {err} (not the spec's)") from err
    return estimator


def _check_param_values(estimator: Any) -> None:
    """Check every parameter value against scikit-learn's own constraints, before any fitting.

    scikit-learn checks values (``n_estimators=-5``) only when ``fit`` runs; its estimators, and
    those of a pipeline, state the constraints, and this applies them now. An estimator without
    them (another library's) is left to its ``fit``. :raises ValueError: naming the parameter.
    """
    from sklearn.base import BaseEstimator

    nested = [v for v in estimator.get_params(deep=True).values() if isinstance(v, BaseEstimator)]
    for part in (estimator, *nested):
        # only where constraints are stated: a subclass of BaseEstimator without them (xgboost's, one's
        # own) inherits _validate_params, which then fails with an AttributeError
        validate = getattr(part, "_validate_params", None)
        if callable(validate) and isinstance(getattr(part, "_parameter_constraints", None), dict):
            validate()  # InvalidParameterError is a ValueError (and a TypeError)


def _estimator_from_spec(spec: PipelineSpec) -> Any:
    from sklearn.base import BaseEstimator

    path = spec.estimator.class_path
    try:
        factory = import_estimator(path, parse_allowed_modules(mlops_setting("allowed_estimator_modules")))
    except ImportError as err:
        raise TrainingError(f"estimator.class: {err}") from err
    try:
        estimator = factory(**spec.estimator.params)
    except TypeError as err:
        raise TrainingError(
            f"estimator.params for {path}: {err}{_params_hint(factory, spec.estimator.params)}"
        ) from err
    if not isinstance(estimator, BaseEstimator):
        raise TrainingError(
            f"estimator.class: expected a scikit-learn estimator, {path} built a {type(estimator).__name__}"
        )
    built = estimator.get_params(deep=False)
    for name, value in spec.estimator.params.items():
        if name in NESTED_ESTIMATOR_PARAMS and name in built and _names_an_estimator_in_text(built[name]):
            raise TrainingError(
                f"estimator.params.{name}: {path} needs an estimator object there, and a YAML spec can only give "
                f"it {type(value).__name__} {value!r}; name a function that builds the whole model as "
                "estimator.class instead (its module in [mlops] allowed_estimator_modules)"
            )
    return estimator


def _params_hint(factory: Any, params: dict[str, Any]) -> str:
    """``; it takes ...`` (with a likely meant name) when ``params`` name one ``factory`` does not take, else ``""``."""
    import inspect

    try:
        accepted = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return ""
    if any(p.kind is p.VAR_KEYWORD for p in accepted):  # it takes any name: no name is unknown
        return ""
    taken = [p.name for p in accepted]
    unknown = [name for name in params if name not in taken]
    if not unknown:
        return ""
    meant = [m for k in unknown for m in closest_name(k, taken)]
    hint = f" (did you mean {', '.join(map(repr, meant))}?)" if meant else ""
    return f"{hint}; it takes {sorted(taken)}"


def _names_an_estimator_in_text(value: Any) -> bool:
    """Whether a nested-estimator parameter holds text where an estimator object belongs."""
    if isinstance(value, str):
        return True
    if isinstance(value, list | tuple):
        return any(
            isinstance(item, str)
            or (isinstance(item, list | tuple) and len(item) > 1 and isinstance(item[1], str)
                and item[1] not in ("drop", "passthrough"))
            for item in value
        )  # fmt: skip
    return False


def _check_task(estimator: Any, spec: PipelineSpec) -> None:
    """A classifier for ``classification``, a regressor for ``regression``, before any fitting."""
    from sklearn.base import is_classifier, is_regressor

    fits = is_classifier(estimator) if spec.task == "classification" else is_regressor(estimator)
    if fits:
        return
    built = "a classifier" if is_classifier(estimator) else "a regressor" if is_regressor(estimator) else "neither"
    wanted = "a classifier" if spec.task == "classification" else "a regressor"
    raise TrainingError(
        f"estimator.class: task is {spec.task!r}, so expected {wanted}, found {spec.estimator.class_path} "
        f"({type(estimator).__name__} is {built}{' a classifier nor a regressor' if built == 'neither' else ''})"
    )


def _seed(estimator: Any, seed: int) -> None:
    """Set ``random_state`` on every step that has one and was left unset."""
    params = estimator.get_params(deep=True)
    fixed = {k: seed for k, v in params.items() if k.split("__")[-1] == "random_state" and v is None}
    if fixed:
        estimator.set_params(**fixed)


def build_preprocessor(x: pd.DataFrame) -> Any:
    """Numeric: median impute + standard scale; categorical: most-frequent impute + one-hot."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in x.columns if pd.api.types.is_numeric_dtype(x[c]) and not pd.api.types.is_bool_dtype(x[c])]
    categorical = [c for c in x.columns if c not in numeric]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        transformers.append(
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric)
        )
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            )
        )
    return ColumnTransformer(transformers, remainder="drop")


def prepare_features(x: pd.DataFrame) -> pd.DataFrame:
    """Normalise dtypes for scikit-learn and for the model signature.

    Integers and booleans become float64 (so a missing value at serving time fits the schema),
    nullable extension types become float64 or object.
    """
    import pandas as pd

    out = x.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_integer_dtype(series.dtype) and not isinstance(
            series.dtype, pd.api.extensions.ExtensionDtype
        ):
            out[column] = series.astype("float64")
        elif pd.api.types.is_bool_dtype(series) or isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
            if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
                out[column] = series.astype("float64")
            else:
                out[column] = series.astype(object).where(series.notna(), None)
    return out


def fit_model(spec: PipelineSpec, split: Split, overrides: dict[str, Any] | None = None) -> Any:
    """Build and fit the model on the training part of ``split``.

    A feature with no value in the training part (a column added lately, under a time split) is a
    :class:`TrainingError`: scikit-learn's imputer would drop it in silence, or fail without its name.
    """
    empty = [str(c) for c in split.x_train.columns if not split.x_train[c].notna().any()]
    if empty:
        raise TrainingError(
            f"feature(s) {empty} have no value in the training part of the split ({len(split.x_train)} rows, "
            f"split.strategy {spec.split.strategy}): the model cannot learn from them; leave them out of "
            "'features' until older rows have values"
        )
    model = build_model(spec, split.x_train, overrides)
    try:
        model.fit(split.x_train, split.y_train)
    except (ValueError, TypeError) as err:
        raise TrainingError(f"fitting {spec.estimator.class_path} failed: {err}") from err
    return model
