"""``src/`` reaches other libraries through their public API only (issue #19).

An AST scan: no private name of another library (``x._name`` on anything but ``self``/``cls``,
``from lib._private import …``), no monkeypatching (``setattr`` on a module, assignment to an
attribute of an imported module), no import hook (``sys.meta_path``), no SQL, and no import
circle between the project's modules. The few places with no public route live in
``linear_nets/compat.py`` (at most three, each marked ``# compat:``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import linear_nets

SRC = Path(linear_nets.__file__).parent
COMPAT = SRC / "compat.py"
SQL = re.compile(r"\b(UPDATE\s+\w+\s+SET|INSERT\s+INTO|DELETE\s+FROM|SELECT\s.+\sFROM)\b", re.I)


def _modules() -> list[Path]:
    return sorted(path for path in SRC.rglob("*.py") if "__pycache__" not in path.parts)


def _imported_names(tree: ast.AST) -> set[str]:
    """Names bound by ``import x`` / ``from x import y`` of other packages."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module
            and not node.module.startswith("linear_nets")
        ):
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def reaches(path: Path) -> list[str]:
    """What the module at ``path`` does that the rules forbid, one line each."""
    tree = ast.parse(path.read_text())
    imported = _imported_names(tree)
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(SRC)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Attribute) and re.match(r"_[^_]", node.attr):
            owner = node.value
            own = isinstance(owner, ast.Name) and owner.id in {"self", "cls"}
            parent = isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super"
            if not (own or parent):  # a subclass may call its parent's protected methods
                found.append(f"{where} private attribute {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            names = [alias.name for alias in node.names]
            if parts[0] != "linear_nets" and (
                any(p.startswith("_") and p != "__future__" for p in parts)
                or any(re.match(r"_[^_]", name) for name in names)
            ):
                found.append(f"{where} private import {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) in {"getattr", "hasattr"}
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and re.match(r"_[^_]", str(node.args[1].value))
        ):
            found.append(f"{where} private attribute {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr":
            target = node.args[0] if node.args else None
            if isinstance(target, ast.Name) and target.id in imported:
                found.append(f"{where} monkeypatch {ast.unparse(node)}")
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found += [
                f"{where} monkeypatch {ast.unparse(target)}"
                for target in targets
                if isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id in imported
            ]
        if isinstance(node, ast.Attribute) and node.attr == "meta_path":
            found.append(f"{where} import hook")
        if isinstance(node, ast.Constant) and SQL.search(str(node.value)):
            found.append(f"{where} SQL {node.value[:40]!r}")
    return found


def test_the_scan_finds_what_it_is_for(tmp_path: Path):
    sample = SRC / "_scan_sample.py"
    sample.write_text(
        "import sys\nimport mlflow\nfrom kedro.io.core import _private\n"
        "x = obj._version\nsetattr(mlflow, 'f', None)\nmlflow.g = 1\ngetattr(r, '_sock')\n"
        "sys.meta_path.insert(0, None)\nq = 'UPDATE runs SET a = 1'\nself._ok = 1\n"
    )
    try:
        kinds = [line.split(" ", 1)[1].split(" ")[0] for line in reaches(sample)]
    finally:
        sample.unlink()
    assert sorted(kinds) == sorted(
        ["private", "private", "private", "monkeypatch", "monkeypatch", "import", "SQL"]
    )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_src_uses_public_api_only(path: Path):
    if path == COMPAT:
        return
    assert reaches(path) == []


def test_compat_holds_at_most_three_places_each_marked():
    marked = [line for line in COMPAT.read_text().splitlines() if "# compat:" in line]
    assert 1 <= len(marked) <= 3
    assert all(re.search(r"\d+\.\d+\.\d+", line) for line in marked)  # the version checked


def _project_imports(path: Path) -> set[str]:
    """The ``linear_nets`` modules a module imports, at any depth of its body."""
    module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts).removesuffix(
        ".__init__"
    )
    found = set()
    tree = ast.parse(path.read_text())
    typing_only = {  # `if TYPE_CHECKING:` imports: names for the type checker, not imports
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                base = ".".join(module.split(".")[: -node.level] + [node.module])
            if base.startswith("linear_nets"):
                found.add(base)
                # `from linear_nets.engine import distributed` imports a module
                found |= {
                    f"{base}.{alias.name}"
                    for alias in node.names
                    if (SRC.parent / base.replace(".", "/") / f"{alias.name}.py").is_file()
                }
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("linear_nets.")}
    return found - {module}


def test_no_two_modules_import_each_other():
    graph = {}
    for path in _modules():
        name = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        graph[name.removesuffix(".__init__")] = _project_imports(path)
    circles = sorted(
        f"{a} <-> {b}"
        for a, targets in graph.items()
        for b in targets
        if a < b and a in graph.get(b, ()) and not _package_and_its_module(a, b)
    )
    assert circles == []


def _package_and_its_module(a: str, b: str) -> bool:
    """A package's ``__init__`` re-exporting its own module is not a circle between modules."""
    return b.startswith(f"{a}.") or a.startswith(f"{b}.")
