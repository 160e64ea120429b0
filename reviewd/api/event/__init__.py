"""ftrack-compatible events: the hub, the event mapping, expressions and the wire codec.

Modules, each with one job: ``base`` (:class:`~reviewd.api.event.base.Event`),
``expression`` (subscription/target matcher, pure), ``packet`` (socket.io 0.9 codec,
pure), ``subscriber``, ``backoff``, ``connection`` (one socket.io session) and ``hub``
(:class:`~reviewd.api.event.hub.EventHub`, the façade), with the hub's parts beside it:
``subscriptions``, ``dispatch``, ``inbox``, ``outbox``, ``writer``, ``envelope``,
``acks``, ``replies``, ``frames`` and ``supervision``.  Nothing is imported here so
that the embedded server can import the two pure modules without pulling in the client.
"""
