"""Finding, loading, attributing and unloading plugins.

Two kinds of plugin run side by side:

* **classic** ftrack plugins: a module with ``register(session, **kwargs)`` that
  subscribes callbacks on ``session.event_hub`` itself — what studios already have;
* **pluggy** plugins: a module (or any object) with functions marked
  ``@reviewd.hookimpl`` implementing the hooks in :mod:`reviewd.plugin.hookspecs`.

A module with both is both.  Plugins come from plugin paths (every ``.py`` file and
every package directory; plain sub-directories are searched too, as ftrack does)
and from installed distributions through the ``reviewd.plugins`` entry-point group.

:func:`discover` is the classic ftrack discovery a ``Session`` runs at construction.
:class:`PluginHost` is what the daemon uses: stable names, attribution of every
subscription to its plugin, failure isolation (or strict mode), unload and reload.

This package is the public import point; each job lives in its own module:

==================  ==========================================================
``markers``         pluggy project name, ``hookimpl`` marker, entry-point group
``paths``           finding plugin modules on plugin paths; world-writable refusal
``importing``       importing a plugin afresh from source under a chosen name
``arguments``       culling plugin arguments to a ``register()`` signature
``classic``         running ``register()`` and attributing its subscriptions
``records``         :class:`PluginRecord`, :class:`HookOutcome`, failure recording
``discovery``       :func:`discover`, the Session's classic discovery
``entry_points``    installed plugins (the ``reviewd.plugins`` group)
``hooks``           checking hook implementations; calling one plugin's hooks
``host``            :class:`PluginHost`
==================  ==========================================================

Plugin authors want :mod:`reviewd.plugin.helpers`, not this package.
"""

from __future__ import annotations

from reviewd.plugin.arguments import cull_arguments
from reviewd.plugin.classic import run_classic_register
from reviewd.plugin.discovery import discover
from reviewd.plugin.host import PluginHost
from reviewd.plugin.importing import import_candidate
from reviewd.plugin.markers import ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl
from reviewd.plugin.paths import Candidate, find_candidates, split_plugin_paths
from reviewd.plugin.records import HookOutcome, PluginRecord

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "Candidate",
    "HookOutcome",
    "PluginHost",
    "PluginRecord",
    "cull_arguments",
    "discover",
    "find_candidates",
    "hookimpl",
    "import_candidate",
    "run_classic_register",
    "split_plugin_paths",
]
