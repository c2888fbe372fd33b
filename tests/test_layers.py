"""The package's layers: every import goes down, and no module imports itself back.

``docs/how-it-works.rst`` ("Where the code is") names the layers. An arrow from a lower
layer to a higher one, or a cycle between modules, fails here with the offending imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "django_callauth"

#: Highest first. A module belongs to the first layer whose prefix its dotted name starts with.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "entry",
        ("urls", "backends", "admin", "stats", "apps", "checks", "reporting", "templatetags", "management", "contrib"),
    ),
    ("web", ("web",)),
    ("flows", ("flows",)),
    ("providers", ("providers",)),
    ("guards", ("guards",)),
    ("base", ("adapter", "signals", "models", "phones", "errors", "conf", "types", "__init__")),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _layer(module: str) -> int:
    for rank, (_name, prefixes) in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def _imports(path: Path) -> set[str]:
    """The package modules ``path`` imports (at any depth in the file: a lazy import is an arrow too)."""
    module = _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names = [f"{target}.{alias.name}" if target else alias.name for alias in node.names]
            found.update(name if _exists(name) else target for name in names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("django_callauth"):
            target = node.module.removeprefix("django_callauth").lstrip(".")
            found.update(
                f"{target}.{a.name}".lstrip(".") if _exists(f"{target}.{a.name}") else target for a in node.names
            )
    found.discard("")
    found.discard(module)
    return found


def _exists(module: str) -> bool:
    path = PACKAGE.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


GRAPH = {_module_name(path): _imports(path) for path in sorted(PACKAGE.rglob("*.py")) if "migrations" not in path.parts}


def test_every_import_goes_down_or_stays_in_its_layer():
    upward = sorted(
        f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for module, targets in GRAPH.items()
        for target in targets
        if _layer(target) < _layer(module)
    )
    assert upward == []


def test_no_module_imports_itself_back():
    cycles = []
    for start in GRAPH:
        stack, seen = [(start, [start])], set()
        while stack:
            module, path = stack.pop()
            for target in GRAPH.get(module, ()):
                if target == start:
                    cycles.append(" -> ".join([*path, start]))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, [*path, target]))
    # A package's __init__ re-exporting its modules is not a cycle of behaviour; they may import it back
    # only for those names, which they do not: no exception is needed.
    assert cycles == []


@pytest.mark.parametrize(
    "module",
    [
        "django_callauth.backends",
        "django_callauth.adapter",
        "django_callauth.signals",
        "django_callauth.models",
        "django_callauth.urls",
        "django_callauth.conf",
        "django_callauth.errors",
        "django_callauth.phones",
        "django_callauth.providers.base",
        "django_callauth.reporting",
        "django_callauth.templatetags.callauth",
    ],
)
def test_every_documented_import_path_still_imports(module):
    __import__(module)


def test_the_graph_sees_the_imports():
    # The checks above pass on an empty graph too: make sure they read what they judge.
    assert "flows.start" in GRAPH["web.login"] or "flows" in GRAPH["web.login"]
    assert "models" in GRAPH["flows.start"]
    assert _layer("web.login") < _layer("flows.start") < _layer("providers.base") < _layer("guards.limits")
