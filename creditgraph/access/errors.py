"""Errors of the access service and personal-data encryption (all under ``CreditGraphError``)."""

from __future__ import annotations

from creditgraph.errors import CreditGraphError, NotAuthorized


class EncryptionKeyError(CreditGraphError):
    """The encryption key is missing from the environment or malformed."""


class DecryptionError(CreditGraphError):
    """A ciphertext does not open under the key given (wrong key, or the data was altered)."""


class UnknownPartner(CreditGraphError):
    """No partner has the id given."""


class UnknownToken(CreditGraphError):
    """No subject token has the id given."""


class ScoresNotReady(CreditGraphError):
    """No scores are loaded yet (still loading at start-up, or the published file is unreadable)."""


class AccessDatabaseMissing(CreditGraphError):
    """The access database does not exist where it was looked for."""


class AccessDatabaseCorrupt(CreditGraphError):
    """The access database file exists but SQLite cannot read it."""


class NothingToRotate(CreditGraphError, FileNotFoundError):
    """Key rotation found no Parquet file to re-encrypt."""


class Refused(NotAuthorized):
    """A lookup was refused; ``reason`` is the internal cause recorded in the audit log.

    The HTTP answer never carries ``reason``: partners always see the same code, so a refusal
    tells them nothing about the subject.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"lookup refused ({reason})")
