"""Layering rules of the package tree, checked on the source (AST), not by convention.

1. Outside the client (``reviewd/api/``) nothing imports a private client module
   (one whose dotted path has a ``_``-prefixed part, such as ``reviewd.api._x``).
2. The embedded server (``reviewd/devserver/``) imports nothing of the client but
   the two pure event modules, ``reviewd.api.event.expression`` and
   ``reviewd.api.event.packet``: it must stay an independent implementation.

Each rule is also run against a small made-up tree that breaks it, so the check
is known to be able to fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT = "reviewd.api"
DEVSERVER_ALLOWED = {"reviewd.api.event.expression", "reviewd.api.event.packet"}


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(root: Path, dotted: str) -> bool:
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imported_modules(root: Path, path: Path) -> list[tuple[int, str]]:
    """``(line, dotted module)`` for every module *path* imports (relative ones resolved)."""
    module = _module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                found.append((node.lineno, candidate if _is_module(root, candidate) else source))
    return found


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(root: Path) -> list[str]:
    """Every breach of the two rules under *root* (a folder holding the ``reviewd`` package)."""
    problems = []
    for path in sorted((root / "reviewd").rglob("*.py")):
        module = _module_name(root, path)
        if _inside(module, CLIENT):
            continue
        in_devserver = _inside(module, "reviewd.devserver")
        for line, name in imported_modules(root, path):
            if not _inside(name, CLIENT):
                continue
            where = f"{path.relative_to(root)}:{line}"
            private = [part for part in name.split(".") if part.startswith("_")]
            if private:
                problems.append(f"{where} imports the client's private module {name}")
            if (
                in_devserver
                and name not in DEVSERVER_ALLOWED
                and name not in (CLIENT, "reviewd.api.event")
            ):
                problems.append(
                    f"{where}: the devserver imports {name} (only "
                    f"{', '.join(sorted(DEVSERVER_ALLOWED))} are allowed)"
                )
            elif in_devserver and name in (CLIENT, "reviewd.api.event"):
                problems.append(
                    f"{where}: the devserver imports the package {name}; import "
                    "the pure module it needs instead"
                )
    return problems


def test_the_package_tree_keeps_its_layers():
    assert violations(ROOT) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return tmp_path


BASE = {
    "reviewd/__init__.py": "",
    "reviewd/api/__init__.py": "",
    "reviewd/api/_wire.py": "",
    "reviewd/api/session.py": "from reviewd.api import _wire\n",
    "reviewd/api/event/__init__.py": "",
    "reviewd/api/event/expression.py": "",
    "reviewd/api/event/packet.py": "",
    "reviewd/api/event/hub.py": "",
    "reviewd/devserver/__init__.py": "",
    "reviewd/devserver/ok.py": (
        "from reviewd.api.event import expression\nimport reviewd.api.event.packet\n"
    ),
    "reviewd/daemon/__init__.py": "",
    "reviewd/daemon/ok.py": "from reviewd.api.session import Session\n",
}


def test_the_check_passes_a_tree_that_keeps_the_rules(tmp_path):
    assert violations(_tree(tmp_path, BASE)) == []


def test_the_check_catches_a_private_client_import_outside_the_client(tmp_path):
    root = _tree(tmp_path, {**BASE, "reviewd/daemon/bad.py": "from ..api import _wire\n"})
    (problem,) = violations(root)
    assert "reviewd/daemon/bad.py:1" in problem and "private module reviewd.api._wire" in problem


def test_the_check_catches_the_devserver_using_more_of_the_client(tmp_path):
    root = _tree(
        tmp_path,
        {
            **BASE,
            "reviewd/devserver/bad.py": "import json\nfrom reviewd.api.event.hub import x\n",
        },
    )
    (problem,) = violations(root)
    assert "reviewd/devserver/bad.py:2" in problem and "reviewd.api.event.hub" in problem
