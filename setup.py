"""Build hook: the example plugins travel inside the wheel.

All metadata lives in ``pyproject.toml``; this file exists only for one build step.
In the repository the example plugins are the folder ``plugins/`` -- a plugin path
that ``reviewd --foreground`` loads from the checkout, where every ``.py`` file is a
plugin, so they cannot live inside the ``reviewd`` package as modules.  A host that
installs reviewd from its wheel has no checkout, so the build copies the folder to
``reviewd/examples/plugins/`` in the wheel, where :func:`reviewd.examples.plugin_path`
finds it.  Editable installs skip the copy: there the checkout's folder is used.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

EXAMPLES_SOURCE = Path(__file__).parent / "plugins"
EXAMPLES_TARGET = ("reviewd", "examples", "plugins")


class BuildPyWithExamples(build_py):
    """``build_py`` that also copies the ``plugins/`` folder (module plugins, package
    plugins, the README; never bytecode caches) into the build."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib, *EXAMPLES_TARGET)
        for source in sorted(EXAMPLES_SOURCE.rglob("*")):
            relative = source.relative_to(EXAMPLES_SOURCE)
            if not source.is_file() or "__pycache__" in relative.parts or source.suffix == ".pyc":
                continue
            self.mkpath(str((target / relative).parent))
            self.copy_file(str(source), str(target / relative))


setup(cmdclass={"build_py": BuildPyWithExamples})
