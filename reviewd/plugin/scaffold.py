"""``reviewd new-plugin NAME [--classic]``: write a plugin package that passes its test.

Why a generator and not a template repository: the package it writes must match the
reviewd that writes it — the entry-point group the host loads, the hook names, the
fixtures of :mod:`reviewd.testing` — and it must work straight away, which its own test
(driving a real ``ftrack.update`` through the embedded server into the plugin) shows
on the first ``pytest``.  Both styles are offered: pluggy (``@reviewd.hookimpl``, with
per-subscription timeouts and retries) and classic ftrack (``register(session)``,
``import ftrack_api``), which also runs under ftrack's own event listener.
"""

from __future__ import annotations

import argparse
import keyword
import os
import re
import string
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "write_plugin", "ScaffoldError"]

EX_OK, EX_USAGE, EX_CANTCREAT = 0, 2, 73
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class ScaffoldError(Exception):
    """A name or place the scaffold cannot use; the message says what to do instead,
    *exit_code* is what ``reviewd new-plugin`` exits with."""

    def __init__(self, message: str, exit_code: int = EX_CANTCREAT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist_name"
version = "0.1.0"
description = "A reviewd plugin: $summary"
requires-python = ">=3.10"
dependencies = ["reviewd"]

# The daemon loads every installed package that declares this entry point.
[project.entry-points."reviewd.plugins"]
$name = "$name"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
# reviewd's fixtures (ftrack_server, reviewd_plugin, ftrack_changes, wait_for, ...)
reviewd_fixtures = true
"""

PLUGGY_PLUGIN = '''\
"""$name: a reviewd plugin (pluggy style).

When a task's status changes, it writes a note on the task saying so.  Replace the
handler with your own logic; the test in tests/ shows how to drive it.
"""

import logging

import reviewd

log = logging.getLogger("reviewd.plugins.$name")


@reviewd.hookimpl
def reviewd_register(session, registry, arguments):
    """Called once when the daemon loads the plugin, with its [plugin.$name] arguments."""
    prefix = arguments.get("prefix", "Status is now")

    def on_update(event):
        for entity in event["data"].get("entities", []):
            if entity.get("entityType") != "task" or "statusid" not in entity.get("keys", []):
                continue
            task = session.get("Task", entity["entityId"])
            me = session.query(f'User where username is "{session.api_user}"').one()
            text = f"{prefix} {task['status']['name']}"
            session.create("Note", {"content": text, "parent_id": task["id"],
                                    "parent_type": "Task", "user_id": me["id"]})
            session.commit()
            log.info("noted %r on task %s", text, task["id"])

    # Each subscription gets the daemon's lane, retries and timeouts; timeout is in seconds.
    registry.subscribe("topic=ftrack.update", on_update, timeout=60)
'''

CLASSIC_PLUGIN = '''\
"""$name: a reviewd plugin (classic ftrack style).

When a task's status changes, it writes a note on the task saying so.  It uses only
``ftrack_api`` names, so it runs unchanged under ftrack's own event listener too.
"""

import logging

import ftrack_api

log = logging.getLogger("reviewd.plugins.$name")


def register(session, prefix="Status is now", **kwargs):
    """Called once with the session and this plugin's [plugin.$name] arguments."""
    if not isinstance(session, ftrack_api.Session):
        return  # not an API session: the ftrack convention for shared plugin folders

    def on_update(event):
        for entity in event["data"].get("entities", []):
            if entity.get("entityType") != "task" or "statusid" not in entity.get("keys", []):
                continue
            task = session.get("Task", entity["entityId"])
            me = session.query(f'User where username is "{session.api_user}"').one()
            text = f"{prefix} {task['status']['name']}"
            session.create("Note", {"content": text, "parent_id": task["id"],
                                    "parent_type": "Task", "user_id": me["id"]})
            session.commit()
            log.info("noted %r on task %s", text, task["id"])

    session.event_hub.subscribe("topic=ftrack.update", on_update)
'''

TEST = '''\
"""$name under the daemon: a real status change on the embedded ftrack server."""


def notes_on(session, task):
    query = f'select content from Note where parent_id is "{task["id"]}"'
    return [note["content"] for note in session.query(query).all()]


def test_${name}_notes_a_status_change($session_fixture, ftrack_changes, reviewd_plugin,
                                     wait_for):
    plugin = reviewd_plugin("$name", arguments={"prefix": "Now"})
    task = $session_fixture.query('Task where name is "compositing"').first()

    ftrack_changes.set_status(task, "In progress")  # the server publishes ftrack.update

    assert wait_for(lambda: notes_on($session_fixture, task), message="the note") == [
        "Now In progress"
    ]
    plugin.wait_idle()
    assert plugin.failed == 0
'''

README = """\
# $name

A reviewd plugin ($style style): $summary.

```sh
pip install -e .      # installs it with its reviewd.plugins entry point
pytest                # its test: the embedded ftrack server, the daemon, a real event
reviewd --foreground  # run it against the demo server; edits reload it live
```

Configure it in the daemon's TOML file:

```toml
[plugin.$name]
prefix = "Status is now"
```

See reviewd's `docs/plugin-guide.md` for the fixtures used in `tests/`.
"""


def _render(template: str, values: dict[str, str]) -> str:
    return string.Template(template).substitute(values)


def check_name(name: str) -> str:
    """*name* if it can be a module and an entry-point name, else a clear error."""
    if not _NAME.match(name) or keyword.iskeyword(name):
        suggestion = re.sub(r"[^a-z0-9_]", "_", name.lower()).lstrip("0123456789") or "my_plugin"
        raise ScaffoldError(
            f"plugin name {name!r} must be a lower-case Python module name "
            f"(letters, digits, underscores), e.g. {suggestion!r}",
            EX_USAGE,
        )
    return name


def write_plugin(
    name: str, directory: str | os.PathLike | None = None, *, classic: bool = False
) -> Path:
    """Write the package for plugin *name* into *directory* (default ``./NAME``)."""
    check_name(name)
    root = Path(directory if directory is not None else name)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ScaffoldError(
            f"{root} already exists and is not empty; choose another name or --directory"
        )
    values = {
        "name": name,
        "dist_name": name.replace("_", "-"),
        "summary": "notes each task status change on the task",
        "style": "classic ftrack" if classic else "pluggy",
        "session_fixture": "ftrack_api_session" if classic else "ftrack_session",
    }
    files = {
        "pyproject.toml": PYPROJECT,
        f"src/{name}/__init__.py": CLASSIC_PLUGIN if classic else PLUGGY_PLUGIN,
        f"tests/test_{name}.py": TEST,
        "README.md": README,
    }
    try:
        for relative, template in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_render(template, values), encoding="utf-8")
    except OSError as exc:
        raise ScaffoldError(f"cannot write {root}: {exc.strerror or exc}") from None
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """``reviewd new-plugin NAME [--classic] [--directory DIR]``."""
    parser = argparse.ArgumentParser(
        prog="reviewd new-plugin",
        description="Write a plugin package (pyproject with the reviewd.plugins entry "
        "point, the plugin, a test using reviewd's fixtures, a README).",
    )
    parser.add_argument("name", help="the plugin's module name, e.g. my_plugin")
    parser.add_argument(
        "--classic",
        action="store_true",
        help="classic ftrack style (register(session), import ftrack_api) "
        "instead of pluggy (@reviewd.hookimpl)",
    )
    parser.add_argument("--directory", metavar="DIR", help="where to write it (default: ./NAME)")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        root = write_plugin(args.name, args.directory, classic=args.classic)
    except ScaffoldError as exc:
        sys.stderr.write(f"reviewd new-plugin: {exc}\n")
        return exc.exit_code
    sys.stdout.write(
        f"wrote {root}/ ({'classic' if args.classic else 'pluggy'} plugin "
        f"{args.name!r}); next: cd {root} && pip install -e . && pytest\n"
    )
    return EX_OK
