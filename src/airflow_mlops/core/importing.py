"""Resolve dotted import paths, statically (without running the module) or for real."""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
from functools import cache
from pathlib import Path
from typing import Any


def split_path(path: str) -> tuple[str, str]:
    """Split ``"pkg.mod.Name"`` into ``("pkg.mod", "Name")``."""
    module, _, name = path.rpartition(".")
    if not module or not name or not all(part.isidentifier() for part in path.split(".")):
        raise ImportError(f"{path!r} is not a dotted path of the form 'package.module.Name'")
    return module, name


def check_importable(path: str) -> None:
    """Check that ``path`` names an object of an installed module without importing it.

    The module files are located with the import machinery and the attribute is looked up in the
    module's source, so a DAG file can validate an estimator path without paying for importing
    scikit-learn. Raises :class:`ImportError` with the reason.
    """
    module, name = split_path(path)
    source = _find_module_source(module)
    if source is None:
        raise ImportError(f"module {module!r} is not installed")
    if source == "":
        return  # compiled or namespace module: cannot look inside, accept
    names, dynamic = _top_level_names(source)
    if name not in names and not dynamic:
        raise ImportError(f"module {module!r} has no attribute {name!r}")


def import_object(path: str) -> Any:
    """Import and return the object named by ``path``."""
    module, name = split_path(path)
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"cannot import module {module!r} for {path!r}: {err}") from err
    try:
        return getattr(mod, name)
    except AttributeError:
        raise ImportError(f"module {module!r} has no attribute {name!r}") from None


@cache
def _find_module_source(module: str) -> str | None:
    """Path of the module's source file, ``""`` if it has none, ``None`` if it is not found."""
    search: list[str] | None = None
    spec = None
    parts = module.split(".")
    for i in range(len(parts)):
        qualified = ".".join(parts[: i + 1])
        spec = importlib.machinery.PathFinder.find_spec(qualified, search)
        if spec is None:
            return None
        search = list(spec.submodule_search_locations or [])
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return ""
    return spec.origin


@cache
def _top_level_names(source: str) -> tuple[frozenset[str], bool]:
    """Names bound at module level, and whether the module resolves attributes dynamically."""
    tree = ast.parse(Path(source).read_text(encoding="utf-8"))
    names: set[str] = set()
    dynamic = False
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            dynamic |= node.name == "__getattr__"
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
                dynamic |= alias.name == "*"
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        names.add(sub.id)
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                value = node.value
                if isinstance(value, ast.List | ast.Tuple):
                    names.update(
                        e.value for e in value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
                    )
    return frozenset(names), dynamic
