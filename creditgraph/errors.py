"""One exception tree for the whole project."""

from __future__ import annotations


class CreditGraphError(Exception):
    """Root of every error creditgraph raises on purpose."""


class SchemaError(CreditGraphError):
    """An input file, row or field does not match its declared schema."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
        value: object = None,
    ) -> None:
        self.file, self.row, self.field, self.value = file, row, field, value
        where = ", ".join(
            part
            for part in (
                f"file {file}" if file else "",
                f"row {row}" if row is not None else "",
                f"field {field!r}" if field else "",
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(CreditGraphError, ValueError):
    """A setting (file, environment variable or flag) has a value that cannot work."""


class StoreUnavailable(CreditGraphError):
    """The graph store cannot be opened or reached."""


class ReadOnlyViolation(CreditGraphError):
    """A statement sent through a read-only path would write."""


class QueryError(CreditGraphError):
    """A query failed, or its parameters are wrong."""


class NotAuthorized(CreditGraphError):
    """The caller has no grant for what it asked."""


class ModelNotFound(CreditGraphError):
    """No saved model matches the id or directory given."""


class TrainingError(CreditGraphError):
    """The training data cannot give a trustworthy model (e.g. too few defaults)."""


class TrainingWarning(UserWarning):
    """A model was trained, but something about it deserves a look (e.g. extreme base points)."""
