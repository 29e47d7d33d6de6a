"""The import contract, checked on the source: which parts of batchdash may import which.

Read from the AST of every module in core/ and tui/ (imports at module level and inside
functions alike, the way import-linter counts them), so a lazy import cannot hide a
dependency: `batchdash.core` never imports the dashboard, textual or click; widgets never
import providers; the command-line modules form no import cycle; no import of an
always-installed module sits behind an ImportError guard; no module grows past 500 lines.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from tests.conftest import ROOT

#: Source folder -> the package it is installed as.
PACKAGES = {"core": "batchdash.core", "tui": "batchdash.tui"}

MAX_LINES = 500


def _source_files() -> Iterator[tuple[str, Path]]:
    """(dotted module name, path) of every module in the package folders."""
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join((package, *parts)), path


@cache
def _modules() -> dict[str, Path]:
    return dict(_source_files())


def _is_package(module: str) -> bool:
    return _modules()[module].name == "__init__.py"


def _imported_names(module: str, tree: ast.AST) -> Iterator[tuple[str, ast.stmt]]:
    """Every module name `module` imports, anywhere in its body, with the import node."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                anchor = module.split(".")
                if not _is_package(module):
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from pkg import sub` imports the submodule `pkg.sub` when there is one.
                sub = f"{base}.{alias.name}"
                yield (sub if sub in _modules() else base), node


@cache
def _imports() -> dict[str, frozenset[str]]:
    """module -> the module names it imports (ours resolved to modules, others as written)."""
    graph = {}
    for module, path in _modules().items():
        tree = ast.parse(path.read_text(), str(path))
        graph[module] = frozenset(name for name, _ in _imported_names(module, tree))
    return graph


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _violations(importers: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module, names in _imports().items()
        if _within(module, importers)
        for name in names
        if any(_within(name, bad) for bad in forbidden)
    )


def test_core_never_imports_the_dashboard_textual_or_click() -> None:
    assert _violations("batchdash.core", ("batchdash.tui", "textual", "click")) == []


def test_widgets_never_import_providers() -> None:
    assert _violations("batchdash.tui.widgets", ("batchdash.core.providers",)) == []


def _is_cli_module(module: str) -> bool:
    return _within(module, "batchdash.tui.cli") or module.startswith("batchdash.tui.cmd_")


def _cycles(nodes: set[str], graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in sorted(graph[node] & nodes):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            component.append(node)
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset()}
    assert _cycles(set(graph), graph) == [["a", "b", "c"]]
    assert _cycles({"a", "b", "d"}, graph) == []


def test_the_command_line_modules_form_no_import_cycle() -> None:
    cli = {module for module in _modules() if _is_cli_module(module)}
    assert len(cli) > 1
    assert _cycles(cli, _imports()) == []


def _base_dependencies() -> set[str]:
    """Import names of the distribution's required (not extra) dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0] for req in project["dependencies"]}
    return {name.lower().replace("-", "_") for name in names}


def test_no_import_of_an_installed_module_is_guarded() -> None:
    always = _base_dependencies() | {"batchdash"} | set(sys.stdlib_module_names)
    guarded = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Try) or not any(
                _catches_import_error(handler) for handler in node.handlers
            ):
                continue
            block = ast.Module(body=node.body, type_ignores=[])
            guarded += [
                f"{module}:{stmt.lineno} guards {name}"
                for name, stmt in _imported_names(module, block)
                if name.split(".")[0] in always
            ]
    assert guarded == []


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    caught = handler.type
    names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
    return any(
        isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names
    )


def test_no_module_passes_500_lines() -> None:
    too_long = []
    for _, path in _modules().items():
        name = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            too_long.append(f"{name}: {lines} lines")
    assert too_long == [], f"modules over {MAX_LINES} lines: split them"
