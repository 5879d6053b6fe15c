"""The layers (docs/architecture.md), checked on the source: only espomail/store/ talks SQL,
nothing outside it touches the engine, and the packages import only downwards.

Each check reads every module with ``ast`` (nothing is imported) and names the file and
line of every offence.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "espomail"

KEYWORDS = "SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|WITH|PRAGMA|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE"
# SQL: a string that starts with a statement keyword written in capitals (the house style),
# or, in any case, with the shape of a statement (prose such as "update" or "Delete email"
# in help texts and messages starts with these words too).
SQL_START = re.compile(rf"\s*({KEYWORDS})(\s|$)")
SQL_SHAPE = re.compile(
    r"""\s*(select\s+(.*\bfrom\b|[\d?*'(]|\w+\s*\()|insert\s+(or\s+\w+\s+)?into\s|update\s+\w+\s+set\s
    |delete\s+from\s|(create|alter|drop)\s+(unique\s+)?(table|index|view|trigger)\s|with\s+\w+\s+as\s*\(
    |pragma\s+\w|(begin|commit|rollback)(\s+\w+)?\s*$|savepoint\s+\w|release\s+\w+\s*$)""",
    re.IGNORECASE | re.DOTALL | re.VERBOSE,
)
# The Store's query methods, and what only an engine has (the connection, cursors).
STORE_METHODS = {"execute", "executemany", "rows", "row", "value", "column", "insert", "update"}
ENGINE_ATTRIBUTES = {"conn", "cursor", "lastrowid", "rowcount", "fetchone", "fetchall", "row_factory"}
ENGINE_MODULES = ("sqlite3", "sqlite_utils", "psycopg", "psycopg2")
ROW_NAMES = re.compile(r"(row|r|.+_row)$")


def modules(*packages: str, exclude: tuple[str, ...] = ()) -> list[Path]:
    roots = [PACKAGE / p for p in packages] if packages else [PACKAGE]
    found = []
    for root in roots:
        paths = [root] if root.suffix == ".py" else sorted(root.rglob("*.py"))
        found += [p for p in paths if not any(p.is_relative_to(PACKAGE / e) for e in exclude)]
    return found


def outside_store() -> list[Path]:
    # testing/postgres.py administers a private PostgreSQL server for the tests (CREATE and
    # DROP DATABASE): it is a test fixture, not a query of espomail's store.
    return modules(exclude=("store", "testing/postgres.py"))


def where(path: Path, node: ast.AST) -> str:
    shown = path.relative_to(PACKAGE.parent) if path.is_relative_to(PACKAGE.parent) else path
    return f"{shown}:{node.lineno}"


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def docstrings(module: ast.Module) -> set[int]:
    """The ids of the docstring nodes (prose, not SQL)."""
    found = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def sql_strings(path: Path) -> Iterator[str]:
    module = tree(path)
    prose = docstrings(module)
    for node in ast.walk(module):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            if SQL_START.match(node.value) or SQL_SHAPE.match(node.value):
                yield f"{where(path, node)}: {node.value.strip()[:60]!r}"


def store_access(path: Path) -> Iterator[str]:
    """Calls of the Store's query methods, and any engine attribute, outside the store."""
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Attribute):
            if node.attr in ENGINE_ATTRIBUTES:
                yield f"{where(path, node)}: .{node.attr}"
            elif node.attr in STORE_METHODS and _is_store(node.value):
                yield f"{where(path, node)}: store.{node.attr}(...)"


def _is_store(node: ast.AST) -> bool:
    """``store``, ``self.store``, ``ctx.store``, ``self.writer.store`` ..."""
    if isinstance(node, ast.Name):
        return node.id == "store" or node.id.endswith("_store")
    return isinstance(node, ast.Attribute) and (node.attr == "store" or node.attr.endswith("_store"))


def positional_row_access(path: Path) -> Iterator[str]:
    """``row[0]``: rows are read by column name (a PostgreSQL dict row has no positions)."""
    for node in ast.walk(tree(path)):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and ROW_NAMES.fullmatch(node.value.id)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, int)
        ):
            yield f"{where(path, node)}: {node.value.id}[{node.slice.value}]"


def imports(path: Path) -> Iterator[tuple[ast.AST, list[str]]]:
    """Each import statement of ``path`` (at the top or inside a function) and the modules
    it may load: ``from espomail import services`` loads espomail and espomail.services."""
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            yield node, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node, [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]


def forbidden_imports(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    offences = []
    for path in paths:
        for node, names in imports(path):
            bad = [n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden)]
            if bad:
                offences.append(f"{where(path, node)}: imports {bad[0]}")
    return offences


# -- only the store talks SQL ---------------------------------------------------------------------


def test_no_sql_outside_the_store():
    offences = [hit for path in outside_store() for hit in sql_strings(path)]
    assert not offences, "SQL belongs in espomail/store/ (a named store function):\n" + "\n".join(offences)


def test_nothing_outside_the_store_queries_it_directly():
    offences = [hit for path in outside_store() for hit in store_access(path)]
    assert not offences, "call a function of espomail/store/ instead:\n" + "\n".join(offences)


def test_no_engine_module_outside_the_store():
    offences = forbidden_imports(outside_store(), ENGINE_MODULES)
    assert not offences, "only espomail/store/ knows the database engine:\n" + "\n".join(offences)


def test_rows_are_read_by_column_name_outside_the_store():
    offences = [hit for path in outside_store() for hit in positional_row_access(path)]
    assert not offences, "read rows by column name (row['id']):\n" + "\n".join(offences)


# -- the packages import downwards only -------------------------------------------------------------

LAYER_RULES = [
    # (the package, what it must not import)
    ("pipeline", ("espomail.services", "espomail.cli")),
    ("policy", ("espomail.services", "espomail.pipeline", "espomail.cli")),
    ("store", ("espomail.services", "espomail.pipeline", "espomail.cli", "espomail.policy")),
    ("mail", ("espomail.store", "espomail.services", "espomail.pipeline", "espomail.cli", "espomail.policy")),
    ("model.py", ("espomail.store", "espomail.services", "espomail.pipeline", "espomail.cli", "espomail.policy")),
]


@pytest.mark.parametrize(("package", "forbidden"), LAYER_RULES, ids=[rule[0] for rule in LAYER_RULES])
def test_layers_import_downwards(package, forbidden):
    offences = forbidden_imports(modules(package), forbidden)
    assert not offences, f"espomail/{package} must not import {', '.join(forbidden)}:\n" + "\n".join(offences)


# -- the checks themselves find what they look for ---------------------------------------------------


def test_the_checks_find_offences(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Update the docs: prose, not SQL."""\n'
        "from espomail.services import access\n"
        "def f(store, ctx):\n"
        '    """Select nothing."""\n'
        '    store.value("select 1")\n'
        '    ctx.store.execute(f"  UPDATE emails SET x = {1}")\n'
        "    row = store.conn\n"
        "    return row[0], {}.update({}), ctx.teams.update(())\n"
    )
    assert [hit.split(": ", 1)[1] for hit in sql_strings(sample)] == ["'select 1'", "'UPDATE emails SET x ='"]
    assert len(list(store_access(sample))) == 3
    assert len(list(positional_row_access(sample))) == 1
    assert forbidden_imports([sample], ("espomail.services",)) == [f"{sample}:2: imports espomail.services"]
