"""The writer thread: drains the outbox to the socket.

Sending happens here and only here, so a publisher never waits for the network and a
slow or dead socket never blocks anyone but this thread.  When a send fails, the
connection is closed (the reader notices and the hub reconnects) and the events not
yet sent go back to the front of the queue, to be sent after the reconnect.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from reviewd.api.event.acks import ACK_TTL, PendingAcks
from reviewd.api.event.connection import Connection, ConnectionLost
from reviewd.api.event.outbox import Outbox

__all__ = ["Writer"]

# The hub's logger: operators configure and filter "reviewd.api.event.hub", whichever
# module of the hub a line comes from.
log = logging.getLogger("reviewd.api.event.hub")


class Writer:
    """Runs :meth:`run` on its own thread until *stop* is set."""

    def __init__(self, outbox: Outbox, acks: PendingAcks, stop: threading.Event) -> None:
        self._outbox = outbox
        self._acks = acks
        self._stop = stop

    def run(self) -> None:
        outbox = self._outbox
        while True:
            taken = outbox.take(self._stop)
            if taken is None:
                return
            try:
                self._write(*taken)
            finally:
                outbox.written()  # also wakes a disconnect() draining the queue

    def _write(self, connection: Connection, batch: list[Any]) -> None:
        deadline = time.monotonic() + ACK_TTL
        for index, (_control, (text, ack_id, info)) in enumerate(batch):
            if ack_id is not None and info is not None:
                self._acks.expect(ack_id, deadline, info)
            try:
                connection.send(text)
            except ConnectionLost as error:
                self._acks.forget(ack_id)
                log.info(
                    "sending to the event server failed (%s); will resend after reconnect", error
                )
                connection.close(str(error))  # the reader notices, says why, reconnects
                # Published events go back to the front, in order; subscriptions are
                # re-sent in full on reconnect, so control frames are not kept.
                unsent = [item for control, item in batch[index:] if not control]
                self._outbox.requeue(connection, unsent)
                return
