"""Static and real resolution of dotted import paths."""

from __future__ import annotations

import pytest

from airflow_mlops.core.importing import check_importable, import_object, split_path


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
