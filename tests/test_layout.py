"""The package's layout keeps its promises (docs/architecture.md): no import cycle, no private
name used outside its module, the exception family in errors.py, subpackages for the layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "audit_analytics"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _trees():
    return {name: ast.parse(path.read_text(), filename=str(path)) for name, path in MODULES.items()}


TREES = _trees()


def _resolve(name: str) -> str | None:
    """The package module an import names (``a.b.c`` may be module ``a.b`` and attribute ``c``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(tree: ast.Module, *, top_level_only: bool) -> list[tuple[str, list[str]]]:
    """(module, names) for each import; with ``top_level_only`` not those inside functions or
    ``if TYPE_CHECKING:`` (which run later or never, and so cannot make a cycle at import)."""
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, tree in TREES.items():
        for module, names in _imports(tree, top_level_only=True):
            targets = [f"{module}.{n}" for n in names] or [module]
            for target in targets:
                resolved = _resolve(target)
                if resolved and resolved != name and not name.startswith(resolved + "."):
                    graph[name].add(resolved)
    return graph


def test_every_subpackage_of_the_design_exists():
    for sub in ("engines", "analysis", "io", "cli", "demo", "ui"):
        assert f"audit_analytics.{sub}" in MODULES, sub
    assert "audit_analytics.engines.contract" in MODULES


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_cycle_check_finds_a_cycle():
    # the check above must be able to fail: a graph with a loop is reported
    graph = _graph()
    graph["audit_analytics.errors"].add("audit_analytics.cli.main")
    assert "audit_analytics.errors" in _reachable(graph, "audit_analytics.cli.main")


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for nxt in graph[node]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_private_name_is_imported_from_another_module():
    offenders = []
    for name, tree in TREES.items():
        for module, names in _imports(tree, top_level_only=False):
            if not module.startswith("audit_analytics"):
                continue
            offenders += [f"{name} imports {module}.{n}" for n in names if n.startswith("_")]
    assert not offenders, offenders


def test_no_private_attribute_of_another_package_module_is_used():
    # ``store._columns`` style: a module imported by name and one of its private names read
    offenders = []
    for name, tree in TREES.items():
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("audit_analytics"):
                for a in node.names:
                    if f"{node.module}.{a.name}" in MODULES:
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                offenders.append(f"{name}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not offenders, offenders


def test_the_exception_family_lives_in_errors():
    defined_elsewhere = []
    for name, tree in TREES.items():
        if name == "audit_analytics.errors":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if any(b.endswith(("Error", "Exception")) for b in bases) or node.name.endswith("Error"):
                    defined_elsewhere.append(f"{name}.{node.name}")
    assert not defined_elsewhere, defined_elsewhere


def test_every_error_of_the_family_is_an_audit_analytics_error():
    from audit_analytics import errors

    family = [
        v
        for v in vars(errors).values()
        if isinstance(v, type) and issubclass(v, Exception) and v.__module__ == errors.__name__
    ]
    assert len(family) >= 10
    assert all(issubclass(cls, errors.AuditAnalyticsError) for cls in family)


# -- the scripts Streamlit runs ---------------------------------------------------------------
SCRIPTS = [PACKAGE.parent / "app.py", *sorted((PACKAGE.parent / "app_pages").glob("*.py"))]
_DOCSTRING_HOLDERS = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _stray_expressions(tree: ast.Module) -> list[int]:
    """Lines of the bare expressions Streamlit's "magic" would write on the page: any
    expression statement but a call (or await/yield) and a docstring (the first statement of
    a module, function or class; a string anywhere else, such as one documenting a constant
    below it, is drawn as markdown)."""
    lines = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for index, stmt in enumerate(body):
            if not isinstance(stmt, ast.Expr) or isinstance(stmt.value, ast.Call | ast.Await | ast.Yield):
                continue
            docstring = index == 0 and isinstance(node, _DOCSTRING_HOLDERS)
            if not (docstring and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)):
                lines.append(stmt.lineno)
    return lines


def test_no_script_writes_a_stray_expression_on_the_page():
    assert len(SCRIPTS) > 3
    stray = {
        str(path.name): lines
        for path in SCRIPTS
        if (lines := _stray_expressions(ast.parse(path.read_text(), filename=str(path))))
    }
    assert not stray, f"Streamlit would write these lines on the page: {stray}"


def test_the_stray_expression_check_finds_one():
    code = '"""Doc."""\nimport streamlit as st\nPATH = "x"\n"""About PATH."""\nst.write(PATH)\ntotal\n'
    assert _stray_expressions(ast.parse(code)) == [4, 6]
