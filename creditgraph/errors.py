"""One exception tree for the whole project.

Everything a user can cause (a bad file, setting, flag, argument or request; data
that is missing) raises a :class:`CreditGraphError`, which the CLI prints as one
line. Where a built-in error used to be raised the class subclasses it as well
(``ConfigError`` is a ``ValueError``, ``DataMissing`` a ``FileNotFoundError``…),
so ``except ValueError`` written against the old behaviour still catches it.
Broken internal invariants stay ``AssertionError``/``RuntimeError``: they are bugs.
"""

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


class MissingColumns(SchemaError, KeyError):
    """A table lacks columns it must have (e.g. a model's features in the rows to score)."""

    __str__ = Exception.__str__  # KeyError's would quote the whole message


class ConfigError(CreditGraphError, ValueError):
    """A setting (file, environment variable or flag) has a value that cannot work."""


class InvalidArgument(CreditGraphError, ValueError):
    """A value given to a command, function or request cannot work (settings: ConfigError)."""


class DataMissing(CreditGraphError, FileNotFoundError):
    """Something the data directory should hold is not there (e.g. a history version)."""


class RunPruned(DataMissing):
    """A scoring run's scores and model inputs were removed by retention (its manifest is kept)."""


class UnknownFeature(CreditGraphError, KeyError):
    """A feature name is not declared in the feature dictionary (e.g. in an older model)."""

    __str__ = Exception.__str__  # KeyError's would quote the whole message


class StoreUnavailable(CreditGraphError):
    """The graph store cannot be opened or reached."""


class ClusterUnavailable(CreditGraphError):
    """No Dask scheduler answers at the address given (``--cluster``)."""


class ReadOnlyViolation(CreditGraphError):
    """A statement sent through a read-only path would write."""


class QueryError(CreditGraphError):
    """A query failed, or its parameters are wrong."""


class NotAuthorized(CreditGraphError):
    """The caller has no grant for what it asked."""


class ModelNotFound(CreditGraphError):
    """No saved model matches the id or directory given."""


class EncryptionKeyError(CreditGraphError):
    """The encryption key is missing from the environment or malformed."""


class DecryptionError(CreditGraphError):
    """A ciphertext does not open under the key given (wrong key, or the data was altered)."""


class NothingToRotate(CreditGraphError, FileNotFoundError):
    """Key rotation found no Parquet file to re-encrypt."""


class TrainingError(CreditGraphError):
    """The training data cannot give a trustworthy model (e.g. too few defaults)."""


class TrainingWarning(UserWarning):
    """A model was trained, but something about it deserves a look (e.g. extreme base points)."""
