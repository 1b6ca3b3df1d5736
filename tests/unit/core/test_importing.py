"""Static and real resolution of dotted import paths."""

from __future__ import annotations

import re
from os import system  # noqa: F401  (re-exported on purpose: an allowed module must not launder them)
from shutil import rmtree  # noqa: F401

import pytest

from airflow_mlops.core.importing import (
    AllowedModules,
    check_estimator_path,
    check_importable,
    import_estimator,
    import_object,
    parse_allowed_modules,
    split_path,
    static_kind,
)


def test_split_path_rejects_non_dotted() -> None:
    """A bare name or a malformed path is refused."""
    with pytest.raises(ImportError, match="not a dotted path"):
        split_path("LogisticRegression")
    with pytest.raises(ImportError, match="not a dotted path"):
        split_path("sklearn..X")


@pytest.mark.parametrize(
    "path",
    [
        "sklearn.linear_model.LogisticRegression",
        "sklearn.ensemble.RandomForestClassifier",
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "sklearn.pipeline.Pipeline",
        "collections.OrderedDict",
    ],
)
def test_check_importable_accepts_real_objects(path: str) -> None:
    """Objects defined or re-exported by a module are found statically."""
    check_importable(path)


def test_check_importable_rejects_missing() -> None:
    """A missing attribute or module is reported."""
    with pytest.raises(ImportError, match="has no attribute 'Nope'"):
        check_importable("sklearn.linear_model.Nope")
    with pytest.raises(ImportError, match="not installed"):
        check_importable("not_a_module_xyz.Thing")


def test_import_object() -> None:
    """import_object returns the object or explains what is missing."""
    from collections import OrderedDict

    assert import_object("collections.OrderedDict") is OrderedDict
    with pytest.raises(ImportError, match="has no attribute 'Nope'"):
        import_object("collections.Nope")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("os.system", "module 'os' is not an allowed estimator module"),
        ("builtins.eval", "module 'builtins' is not an allowed estimator module"),
        ("os.path.join", "module 'os.path' is not an allowed estimator module"),
        ("subprocess.run", "module 'subprocess' is not an allowed estimator module"),
        ("sklearn.pipeline.make_pipeline", "is a function; factory functions are allowed only under"),
        ("sklearn.datasets.dump_svmlight_file", "is a function"),
        ("sklearn.linear_model", "is not a class or a function"),
        ("sklearn.linear_model.Nope", "has no attribute 'Nope'"),
        ("nosuchpkg.Model", "module 'nosuchpkg' is not installed"),
        (
            "sklearn.linear_model.LogisticRegression.fit",
            "no module 'sklearn.linear_model.LogisticRegression': 'sklearn.linear_model' has no submodule "
            "'LogisticRegression' (expected 'module.Class')",
        ),
    ],
)
def test_estimator_paths_outside_the_allow_list_give_the_true_reason(path: str, reason: str) -> None:
    """The static check names the rule an estimator path breaks, without importing it."""
    with pytest.raises(ImportError, match=re.escape(reason)):
        check_estimator_path(path, AllowedModules())


def test_estimator_allow_list_accepts_classes_and_declared_factories() -> None:
    """sklearn classes (re-exported or not) pass; a declared module adds its classes and functions."""
    allowed = parse_allowed_modules(" tests.unit.core , mycompany.models ,")
    assert allowed.declared == ("tests.unit.core", "mycompany.models")
    for path in ("sklearn.linear_model.LogisticRegression", "sklearn.pipeline.Pipeline", "sklearn.svm.SVC"):
        check_estimator_path(path, AllowedModules())
    check_estimator_path("tests.unit.core.test_training.scaled_logistic", allowed)
    assert static_kind("sklearn.linear_model", "LogisticRegression") == ("class", "sklearn.linear_model._logistic")
    assert not allowed.allows_class("tests.unitx")  # a prefix is a whole module name, not a string prefix


def test_import_estimator_checks_before_importing_or_calling() -> None:
    """At run time the prefix is checked before the import and the object must be an estimator class."""
    with pytest.raises(ImportError, match="not an allowed estimator module"):
        import_estimator("os.system", AllowedModules())
    with pytest.raises(ImportError, match="a class with get_params and fit"):
        import_estimator("collections.OrderedDict", parse_allowed_modules("collections"))
    with pytest.raises(ImportError, match="factory function of a module declared"):
        import_estimator("sklearn.pipeline.make_pipeline", AllowedModules())
    declared = parse_allowed_modules("tests")
    with pytest.raises(ImportError, match="found tests.unit.core.test_importing.system .a builtin_function"):
        import_estimator("tests.unit.core.test_importing.system", declared)
    with pytest.raises(ImportError, match="found tests.unit.core.test_importing.rmtree .a function of shutil"):
        import_estimator("tests.unit.core.test_importing.rmtree", declared)
    from sklearn.linear_model import LogisticRegression

    assert import_estimator("sklearn.linear_model.LogisticRegression", AllowedModules()) is LogisticRegression
