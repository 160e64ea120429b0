"""Finding the ``isinstance(session, ftrack_api.Session)`` guard in a plugin's source.

Classic plugins commonly refuse any session that is not ftrack's.  That guard is
harmless while ``ftrack_api`` resolves to reviewd, and makes the plugin silently
register nothing when a plugin gets the real package.  Detection reads the syntax
tree, so every spelling counts: ``ftrack_api.Session``, ``ftrack_api.session.Session``,
``import ftrack_api as fa`` then ``fa.Session``, ``from ftrack_api import Session``
(also renamed), ``from ftrack_api.session import Session as S``, and tuples of
classes in the second argument.
"""

from __future__ import annotations

import ast

_SESSION_MODULES = ("ftrack_api", "ftrack_api.session")


def _dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


class _GuardFinder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.module_aliases: dict[str, str] = {}  # local name -> ftrack_api module path
        self.class_aliases: set[str] = set()  # local names bound to ftrack_api's Session
        self.found: list[int] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == "ftrack_api" or alias.name.startswith("ftrack_api."):
                if alias.asname:
                    self.module_aliases[alias.asname] = alias.name
                else:  # ``import ftrack_api.session`` binds ``ftrack_api``
                    self.module_aliases["ftrack_api"] = "ftrack_api"

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for alias in node.names:
            local = alias.asname or alias.name
            if module in _SESSION_MODULES and alias.name == "Session":
                self.class_aliases.add(local)
            elif module == "ftrack_api" and alias.name == "session":
                self.module_aliases[local] = "ftrack_api.session"

    def _names_session(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Tuple):
            return any(self._names_session(item) for item in node.elts)
        dotted = _dotted(node)
        if dotted is None:
            return False
        if dotted in self.class_aliases:
            return True
        head, _, rest = dotted.partition(".")
        module = self.module_aliases.get(head)
        if module is None:
            return False
        full = f"{module}.{rest}" if rest else module
        return full in ("ftrack_api.Session", "ftrack_api.session.Session")

    def visit_Call(self, node: ast.Call) -> None:
        if (
            isinstance(node.func, ast.Name)
            and node.func.id == "isinstance"
            and len(node.args) == 2
            and self._names_session(node.args[1])
        ):
            self.found.append(node.lineno)
        self.generic_visit(node)


def guard_lines(source: str) -> list[int]:
    """Line numbers of ``isinstance(..., <ftrack_api's Session>)`` checks in *source*.

    Imports are collected first (in a first pass) so an alias bound anywhere in
    the module counts; unparsable source has no guard we can see.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    finder = _GuardFinder()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            finder.visit_Import(node)
        elif isinstance(node, ast.ImportFrom):
            finder.visit_ImportFrom(node)
    finder.visit(tree)
    return sorted(finder.found)


def has_session_guard(source: str) -> bool:
    return bool(guard_lines(source))
