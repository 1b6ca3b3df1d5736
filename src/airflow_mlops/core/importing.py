"""Resolve dotted import paths, statically (without running the module) or for real.

Estimator paths from a spec pass an allow-list: a class under an allowed module prefix
(scikit-learn, plus the modules an administrator declares), or a factory function under a
declared module. The static check runs at DAG parse time without importing anything; the run-time
check runs again on the imported object before anything is called.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.machinery
import importlib.util
import inspect
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable

Kind = Literal["class", "function", "other", "unknown"]
DEFAULT_ESTIMATOR_MODULES = ("sklearn",)
# Parameters of scikit-learn's meta-estimators that take estimator objects (GridSearchCV, stacking,
# voting, one-vs-rest, calibration, Pipeline, ColumnTransformer, FeatureUnion, ...): a YAML spec
# can only give them text, so such a model is built by a declared factory function instead (null,
# the class's own default, is fine).
NESTED_ESTIMATOR_PARAMS = frozenset(
    {"estimator", "base_estimator", "estimators", "final_estimator", "steps", "transformers", "transformer_list",
     "regressor", "transformer"}
)  # fmt: skip
_MAX_REEXPORT_HOPS = 8


@dataclass(frozen=True)
class AllowedModules:
    """Module prefixes estimators may come from.

    :param builtin: prefixes whose classes are allowed (scikit-learn).
    :param declared: prefixes an administrator added; their classes and factory functions are allowed.
    """

    builtin: tuple[str, ...] = DEFAULT_ESTIMATOR_MODULES
    declared: tuple[str, ...] = ()

    def allows_class(self, module: str) -> bool:
        """Whether a class defined in ``module`` may be an estimator."""
        return _under(module, (*self.builtin, *self.declared))

    def allows_function(self, module: str) -> bool:
        """Whether a function defined in ``module`` may be an estimator factory."""
        return _under(module, self.declared)

    def describe(self) -> str:
        """The prefixes, for error messages."""
        return ", ".join((*self.builtin, *self.declared))


def parse_allowed_modules(configured: str | None) -> AllowedModules:
    """``AllowedModules`` from the comma-separated ``[mlops] allowed_estimator_modules`` value."""
    declared = tuple(p.strip() for p in (configured or "").split(",") if p.strip())
    return AllowedModules(declared=declared)


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def _not_allowed(module: str, allowed: AllowedModules) -> ImportError:
    return ImportError(
        f"module {module!r} is not an allowed estimator module (allowed: {allowed.describe()}; "
        "add a module prefix to [mlops] allowed_estimator_modules)"
    )


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
    static_kind(module, name)


def check_estimator_path(path: str, allowed: AllowedModules) -> None:
    """Statically check that ``path`` is an allowed estimator class or declared factory function.

    Raises :class:`ImportError` naming the rule that is broken: not an allowed module, not
    installed, no such name, or not a class (or a function outside a declared module).
    """
    module, name = split_path(path)
    if not allowed.allows_class(module):
        refused = _not_allowed(module, allowed)
        if importlib.util.find_spec(module.split(".")[0]) is None:  # both, or installing it only meets the other
            raise ImportError(
                f"module {module.split('.')[0]!r} is not installed, and {str(refused).removeprefix('module ')}"
            )
        raise refused
    kind, origin = static_kind(module, name)
    _check_kind(kind, origin, path, allowed)


def _check_kind(kind: Kind, origin: str, path: str, allowed: AllowedModules) -> None:
    if kind == "unknown":
        return  # compiled or dynamic module: the run-time check decides
    if not allowed.allows_class(origin):
        raise ImportError(f"{path!r} is defined in {origin!r}, which is not an allowed estimator module")
    if kind == "function" and not allowed.allows_function(origin):
        raise ImportError(
            f"{path!r} is a function; factory functions are allowed only under the modules declared in "
            "[mlops] allowed_estimator_modules, scikit-learn contributes classes only"
        )
    if kind not in ("class", "function"):
        raise ImportError(f"{path!r} is not a class or a function")


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
        hint = _did_you_mean(name, getattr(mod, "__all__", dir(mod)))
        raise ImportError(f"module {module!r} has no attribute {name!r}{hint}") from None


def import_estimator(path: str, allowed: AllowedModules) -> Any:
    """Import the estimator class or factory named by ``path``, after checking the allow-list.

    The module prefix is checked before the import, so a module outside the list never runs; the
    imported object must be a class with ``get_params`` and ``fit`` (a scikit-learn estimator) or a
    Python function of a declared module. Nothing is called.
    """
    module, _ = split_path(path)
    if not allowed.allows_class(module):
        raise _not_allowed(module, allowed)
    found = import_object(path)
    origin = getattr(found, "__module__", None) or ""
    if inspect.isclass(found):
        if not allowed.allows_class(origin):
            raise _not_allowed(origin, allowed)
        if not (callable(getattr(found, "get_params", None)) and callable(getattr(found, "fit", None))):
            raise ImportError(f"expected a scikit-learn estimator (a class with get_params and fit), found {path}")
        return found
    if inspect.isfunction(found) and allowed.allows_function(origin):
        return found
    raise ImportError(
        f"expected a scikit-learn estimator class, or a factory function of a module declared in "
        f"[mlops] allowed_estimator_modules, found {path} (a {type(found).__name__} of {origin or 'no module'})"
    )


def static_kind(module: str, name: str) -> tuple[Kind, str]:
    """What ``module.name`` is (following re-exports), and the module that defines it, without importing.

    ``unknown`` when the module has no Python source to read or resolves names dynamically.
    """
    if _find_module_source(module) is None:
        raise ImportError(_missing_module(module))
    for _ in range(_MAX_REEXPORT_HOPS):
        source = _find_module_source(module)
        if not source:
            return "unknown", module  # compiled, namespace or built-in module: cannot look inside
        binding = _binding(source, module, name)
        if binding is None:
            return "unknown", module
        kind, target = binding
        if kind != "import":
            return kind, module
        module, name = _absolute(target, module, source)
        if not module:
            return "other", target  # ``from . import submodule``
    return "unknown", module


def _missing_module(module: str) -> str:
    """Why ``module`` cannot be read: not installed, or a path that goes past a module (``pkg.Class.method``)."""
    parts = module.split(".")
    for end in range(len(parts) - 1, 0, -1):
        if _find_module_source(".".join(parts[:end])) is not None:
            parent = ".".join(parts[:end])
            return f"no module {module!r}: {parent!r} has no submodule {parts[end]!r} (expected 'module.Class')"
    return f"module {module!r} is not installed"


def _binding(source: str, module: str, name: str) -> Binding | None:
    """How ``name`` is bound in ``module`` (a submodule is ``other``); ``None`` when it is dynamic."""
    bindings, dynamic = _top_level_bindings(source)
    if name in bindings:
        return bindings[name]
    if _find_module_source(f"{module}.{name}") is not None:
        return "other", ""
    if dynamic:
        return None
    raise ImportError(f"module {module!r} has no attribute {name!r}{_did_you_mean(name, bindings)}")


def _did_you_mean(name: str, names: Iterable[str]) -> str:
    """`` (did you mean 'X'?)`` for a close public name, else ``""``."""
    meant = difflib.get_close_matches(name, [n for n in names if not n.startswith("_")], n=2, cutoff=0.75)
    return f" (did you mean {' or '.join(map(repr, meant))}?)" if meant else ""


def _absolute(target: str, module: str, source: str) -> tuple[str, str]:
    """``(module, name)`` of a re-export ``target`` (``"..pkg.Name"`` relative to ``module``)."""
    level = len(target) - len(target.lstrip("."))
    dotted = target[level:]
    if level:
        package = module if source.endswith("__init__.py") else module.rpartition(".")[0]
        base = package.rsplit(".", level - 1)[0] if level > 1 else package
        dotted = f"{base}.{dotted}" if dotted.partition(".")[0] else base
    found_module, _, found_name = dotted.rpartition(".")
    return found_module, found_name


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


Binding = tuple[Literal["class", "function", "other", "unknown", "import"], str]


@cache
def _top_level_bindings(source: str) -> tuple[dict[str, Binding], bool]:
    """Names bound at module level -> (kind, re-export target), and whether names resolve dynamically.

    Kinds: ``class``, ``function``, ``import`` (target ``"module.name"``, dots first when relative)
    and ``other``. Statements under a top-level ``if``/``try``/``with`` count; function bodies do not.
    """
    bindings: dict[str, Binding] = {}
    dynamic = False
    for node in _top_level_statements(ast.parse(Path(source).read_text(encoding="utf-8")).body):
        for bound, binding in _bindings_of(node):
            bindings[bound] = binding
            dynamic |= bound in ("__getattr__", "*")
    bindings.update(_exported_names(bindings))
    return bindings, dynamic


def _top_level_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    statements: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If | ast.Try | ast.With):
            nested = [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
            nested += [s for handler in getattr(node, "handlers", []) for s in handler.body]
            statements.extend(_top_level_statements(nested))
        else:
            statements.append(node)
    return statements


def _bindings_of(node: ast.stmt) -> list[tuple[str, Binding]]:
    if isinstance(node, ast.ClassDef):
        return [(node.name, ("class", ""))]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return [(node.name, ("function", ""))]
    if isinstance(node, ast.ImportFrom):
        prefix = "." * node.level + (f"{node.module}." if node.module else "")
        return [(a.asname or a.name, ("import", f"{prefix}{a.name}")) for a in node.names]
    if isinstance(node, ast.Import):
        return [((a.asname or a.name).split(".")[0], ("other", "")) for a in node.names]
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [sub.id for t in targets for sub in ast.walk(t) if isinstance(sub, ast.Name)]
        return [(n, ("other", "")) for n in names] + _all_entries(node, names)
    return []


def _all_entries(node: ast.Assign | ast.AnnAssign, names: list[str]) -> list[tuple[str, Binding]]:
    """Names listed in ``__all__`` that nothing else binds are marked ``__all__:<name>`` (see below)."""
    if "__all__" not in names or not isinstance(node.value, ast.List | ast.Tuple):
        return []
    listed = [e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return [(f"__all__:{n}", ("other", "")) for n in listed]


def _exported_names(bindings: dict[str, Binding]) -> dict[str, Binding]:
    """A name in ``__all__`` with no binding of its own is resolved lazily: its kind is unknown."""
    listed = [key.removeprefix("__all__:") for key in bindings if key.startswith("__all__:")]
    return {name: ("unknown", "") for name in listed if name not in bindings}
