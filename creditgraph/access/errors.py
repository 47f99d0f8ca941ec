"""Errors of the access service (all under ``CreditGraphError``).

Personal-data encryption's errors are in :mod:`creditgraph.errors`: ingest raises them too.
"""

from __future__ import annotations

from creditgraph.errors import CreditGraphError, NotAuthorized


class UnknownPartner(CreditGraphError):
    """No partner has the id given."""


class UnknownToken(CreditGraphError):
    """No subject token has the id given."""


class ScoresNotReady(CreditGraphError):
    """No scores are loaded yet (still loading at start-up, or the published file is unreadable)."""


class ServerNotStarted(CreditGraphError, RuntimeError):
    """The access server did not come up (e.g. the port is taken)."""


class AccessDatabaseMissing(CreditGraphError):
    """The access database does not exist where it was looked for."""


class AccessDatabaseCorrupt(CreditGraphError):
    """The access database file exists but SQLite cannot read it."""


class Refused(NotAuthorized):
    """A lookup was refused; ``reason`` is the internal cause recorded in the audit log.

    The HTTP answer never carries ``reason``: partners always see the same code, so a refusal
    tells them nothing about the subject.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"lookup refused ({reason})")
