"""Every import of a project module in connectors/ sits at the top of its module: a function-local
(or ``__main__``-block) import hides a dependency from a reader and from import-linter's graph."""

from __future__ import annotations

import ast
from pathlib import Path

CONNECTORS = Path(__file__).resolve().parents[2] / "connectors"
PROJECT = ("connectors", "workbench", "sync")


def _project_module(node: ast.Import | ast.ImportFrom) -> str | None:
    if isinstance(node, ast.ImportFrom):
        if node.level:
            return "." * node.level + (node.module or "")
        names = [node.module or ""]
    else:
        names = [alias.name for alias in node.names]
    return next((n for n in names if n.split(".")[0] in PROJECT), None)


def _nested_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """Imports of project modules anywhere but the module's top level (an ``if TYPE_CHECKING:``
    block and a top-level try/except still count as the top)."""
    top: set[int] = set()

    def collect(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                top.add(id(stmt))
            elif isinstance(stmt, ast.If) and ast.unparse(stmt.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                collect(stmt.body)
            elif isinstance(stmt, ast.Try):
                collect(stmt.body)
                for handler in stmt.handlers:
                    collect(handler.body)

    collect(tree.body)
    return [
        (node.lineno, module)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        and id(node) not in top
        and (module := _project_module(node)) is not None
    ]


def test_the_check_sees_a_function_local_import():
    source = "import os\n\ndef f():\n    from connectors.sandboxkit.kit import serve\n    import json\n"
    assert _nested_imports(ast.parse(source)) == [(4, "connectors.sandboxkit.kit")]


def test_no_project_module_is_imported_below_the_top_of_a_connectors_module():
    found = [
        f"{path.relative_to(CONNECTORS.parent)}:{line} imports {module}"
        for path in sorted(CONNECTORS.rglob("*.py"))
        for line, module in _nested_imports(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert found == []
