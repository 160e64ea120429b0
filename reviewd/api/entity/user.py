"""``User``: timers, invitations and API key reset."""

from __future__ import annotations

import logging
from typing import Any

from reviewd.api.entity.base import Entity
from reviewd.api.exception import NoResultFoundError, NotUniqueError, ServerError

_log = logging.getLogger("reviewd.api.entity.user")


class User(Entity):
    """A person (or API user) on the server."""

    __slots__ = ()

    def start_timer(
        self, context: Any = None, comment: str = "", name: str | None = None, force: bool = False
    ) -> Entity:
        """Start (and commit) a timer for this user; *force* first stops a running one.

        Without *force* a running timer makes the server refuse the new one,
        reported as :class:`NotUniqueError`.
        """
        if force:
            try:
                self.stop_timer()
            except NoResultFoundError:
                _log.debug("no running timer to stop for user %s", self["id"])
        timer = self.session.create(
            "Timer", {"user": self, "context": context, "name": name, "comment": comment}
        )
        try:
            self.session.commit()
        except ServerError as error:
            if "DuplicateEntryError" in str(error) or "unique" in str(error).lower():
                self.session.rollback()
                raise NotUniqueError(
                    f"User {self['id']} already has a running timer; stop it first or pass "
                    "force=True."
                ) from error
            raise
        return timer

    def stop_timer(self) -> Entity:
        """Stop the running timer, log the time as a ``Timelog`` and commit.

        Raises :class:`NoResultFoundError` when no timer is running.
        """
        import arrow

        session = self.session
        timer = session.query(f'Timer where user_id = "{self["id"]}"').one()
        timezone_aware = session.server_information.get("is_timezone_support_enabled")
        if timezone_aware is None:
            _log.warning("server does not say whether it supports time zones; assuming UTC")
            timezone_aware = True
        now = arrow.now() if timezone_aware else arrow.now().replace(tzinfo="utc")
        start = timer["start"]
        if not isinstance(start, arrow.Arrow):
            start = arrow.get(start)
        elapsed = now - start
        timelog = session.create(
            "Timelog",
            {
                "user_id": timer["user_id"],
                "context_id": timer["context_id"],
                "comment": timer["comment"],
                "start": timer["start"],
                "duration": elapsed.days * 86400 + elapsed.seconds,
                "name": timer["name"],
            },
        )
        session.delete(timer)
        session.commit()
        return timelog

    def send_invite(self) -> None:
        """Ask the server to email this user an invitation."""
        self.session.send_user_invite(self)

    def reset_api_key(self) -> str:
        """Replace this user's API key on the server and return the new one."""
        answer: str = self.session.reset_remote("api_key", entity=self)["api_key"]
        return answer
