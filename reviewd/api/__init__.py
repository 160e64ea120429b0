"""reviewd's ftrack client: one module here for each public module of ``ftrack_api``.

``reviewd.api.session.Session`` is the client; ``reviewd.api.event`` the event hub.
The daemon, the plugin host and the embedded server sit beside this package and
use only its public names.  ``import ftrack_api`` resolves here module for module
through :mod:`reviewd.compat`.
"""
