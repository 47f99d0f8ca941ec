"""Personal data at rest: AES-GCM encrypted columns and keyed-HMAC pseudonyms.

Ingest encrypts personal columns with it, the ``rotate-key`` command re-encrypts them,
and callers make pseudonymous ids (``devices.device_id``) with :func:`pseudonymize`.

One master key, from ``CREDITGRAPH_KEY`` (urlsafe base64 of 32 random bytes), never a
default. Two keys are derived from it with HKDF-SHA256 under different labels, one for
encryption and one for pseudonyms, so neither use can stand in for the other.

An encrypted value is ``nonce (12 bytes) || ciphertext || tag`` with a fresh random
nonce, and the column name as associated data: a value copied into another column does
not decrypt. Missing values stay missing. In Parquet, every binary column is taken to be
an encrypted one (that is how :func:`rotate_key` finds them).

Pseudonyms depend on the key they were made with: :func:`rotate_key` re-encrypts but
cannot change ids already in the graph, so derive pseudonyms from a key that does not
rotate (see :func:`load_key`'s ``variable``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from creditgraph.durable import TMP_PREFIX, fsync_path, temporary_sibling
from creditgraph.errors import (
    DecryptionError,
    EncryptionKeyError,
    InvalidArgument,
    NothingToRotate,
)

KEY_VARIABLE = "CREDITGRAPH_KEY"
NONCE_BYTES = 12
_ENCRYPTION_INFO = b"creditgraph/pii/aes-256-gcm/v1"
_PSEUDONYM_INFO = b"creditgraph/pseudonym/hmac-sha256/v1"
_HOW_TO_MAKE = (
    "make one with: python -c 'from creditgraph.ingest.pii import generate_key; "
    "print(generate_key())' and keep it in a secret store"
)


def generate_key() -> str:
    """A new master key: urlsafe base64 of 32 random bytes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def load_key(variable: str = KEY_VARIABLE) -> bytes:
    """The 32-byte master key from the environment variable ``variable``.

    Raises :class:`EncryptionKeyError` naming the variable when it is unset or not
    urlsafe base64 of 32 bytes. There is no default key.
    """
    text = os.environ.get(variable, "").strip()
    if not text:
        raise EncryptionKeyError(f"{variable} is not set; personal data needs it. {_HOW_TO_MAKE}")
    try:
        key = base64.urlsafe_b64decode(text.encode())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise EncryptionKeyError(
            f"{variable} must be urlsafe base64 of 32 bytes (44 characters); {_HOW_TO_MAKE}"
        )
    return key


def _derive(key: bytes, info: bytes) -> bytes:
    if len(key) != 32:
        raise EncryptionKeyError(f"a master key is 32 bytes, got {len(key)}")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def pseudonymize(values: pd.Series, key: bytes) -> pd.Series:
    """Keyed HMAC-SHA256 (hex) of each value's text; missing values stay missing.

    Deterministic for a given key, so the same person gets the same id in every file.
    Normalise values (case, spacing, phone formats) before calling.
    """
    # Copying a keyed state skips re-deriving the HMAC pads per value: ~2x faster.
    keyed = hmac.new(_derive(key, _PSEUDONYM_INFO), digestmod=hashlib.sha256)

    def one(value: object) -> str:
        state = keyed.copy()
        state.update(str(value).encode())
        return state.hexdigest()

    missing = values.isna().to_numpy()
    out = [
        None if gone else one(value) for value, gone in zip(values.tolist(), missing, strict=True)
    ]
    return pd.Series(out, index=values.index, name=values.name, dtype=object)


def _column_name(values: pd.Series, column: str | None) -> str:
    name = column if column is not None else values.name
    if not isinstance(name, str) or not name:
        raise InvalidArgument("name the column (Series.name or column=): it is the associated data")
    return name


def encrypt_column(values: pd.Series, key: bytes, column: str | None = None) -> pd.Series:
    """AES-256-GCM encrypt each value's UTF-8 text: ``nonce || ciphertext`` bytes per row."""
    name = _column_name(values, column)
    aead, ad = AESGCM(_derive(key, _ENCRYPTION_INFO)), _associated(name)
    missing = values.isna().to_numpy()
    out = [
        None if gone else _seal(aead, str(value).encode(), ad)
        for value, gone in zip(values.tolist(), missing, strict=True)
    ]
    return pd.Series(out, index=values.index, name=values.name, dtype=object)


def decrypt_column(values: pd.Series, key: bytes, column: str | None = None) -> pd.Series:
    """Inverse of :func:`encrypt_column`; raises :class:`DecryptionError` on a wrong key."""
    name = _column_name(values, column)
    aead, ad = AESGCM(_derive(key, _ENCRYPTION_INFO)), _associated(name)
    out: list[str | None] = []
    for row, value in enumerate(values.tolist()):
        if value is None or (isinstance(value, float) and value != value):
            out.append(None)
            continue
        try:
            out.append(_open(aead, value, ad).decode())
        except (InvalidTag, ValueError) as exc:
            raise DecryptionError(
                f"column {name!r}, row {row}: does not decrypt under this key "
                "(wrong key, or the value was altered)"
            ) from exc
    return pd.Series(out, index=values.index, name=values.name)  # pandas' own text dtype


def _associated(column: str) -> bytes:
    return b"creditgraph/column:" + column.encode()


def _seal(aead: AESGCM, plaintext: bytes, ad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plaintext, ad)


def _open(aead: AESGCM, blob: bytes, ad: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + 16:
        raise ValueError("too short to be a ciphertext")
    return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], ad)


# -- key rotation -------------------------------------------------------------------------
@dataclass(frozen=True)
class RotationReport:
    """What :func:`rotate_key` did: files rewritten and values re-encrypted per file."""

    files: list[Path] = field(default_factory=list)
    columns: dict[str, list[str]] = field(default_factory=dict)
    values: int = 0
    already_rotated: int = 0  # columns found under the new key (a resumed rotation)


def rotate_key(path: Path | str, old_key: bytes, new_key: bytes) -> RotationReport:
    """Re-encrypt every encrypted (binary) column of a Parquet file, or of all under a folder.

    All files are decrypted and re-encrypted into temporary files first; only when every
    one succeeded are they swapped in, each by an atomic rename. A column that already
    opens under ``new_key`` is left as it is, so an interrupted rotation can be rerun.
    """
    root = Path(path)
    files = (
        sorted(f for f in root.rglob("*.parquet") if not f.name.startswith(TMP_PREFIX))
        if root.is_dir()
        else [root]
    )
    if not files or not all(f.is_file() for f in files):
        raise NothingToRotate(f"no Parquet file at {root}: nothing to re-encrypt")
    old_aead = AESGCM(_derive(old_key, _ENCRYPTION_INFO))
    new_aead = AESGCM(_derive(new_key, _ENCRYPTION_INFO))
    staged: list[tuple[Path, Path]] = []
    columns: dict[str, list[str]] = {}
    count = already = 0
    try:
        for file in files:
            table = pq.read_table(file)
            changed: list[str] = []
            for i, fld in enumerate(table.schema):
                if not (pa.types.is_binary(fld.type) or pa.types.is_large_binary(fld.type)):
                    continue
                values = table.column(i).to_pylist()
                ad = _associated(fld.name)
                if _opens(new_aead, values, ad) and not _opens(old_aead, values, ad):
                    already += 1
                    continue
                try:
                    fresh = [
                        None if v is None else _seal(new_aead, _open(old_aead, v, ad), ad)
                        for v in values
                    ]
                except (InvalidTag, ValueError) as exc:
                    raise DecryptionError(
                        f"{file}: column {fld.name!r} does not decrypt under the old key; "
                        "nothing was changed"
                    ) from exc
                table = table.set_column(i, fld, pa.array(fresh, type=fld.type))
                changed.append(fld.name)
                count += sum(v is not None for v in values)
            if changed:
                # Beside the file under a name recovery sweeps, owner-only, durable.
                tmp = temporary_sibling(file)
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                pq.write_table(table, tmp)
                fsync_path(tmp)
                staged.append((tmp, file))
                columns[str(file)] = changed
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, file in staged:
        os.replace(tmp, file)
        fsync_path(file.parent)
    return RotationReport([f for _, f in staged], columns, count, already)


def _opens(aead: AESGCM, values: list[bytes | None], ad: bytes) -> bool:
    """True if the column's first value decrypts (all-missing columns count as open)."""
    first = next((v for v in values if v is not None), None)
    if first is None:
        return True
    try:
        _open(aead, first, ad)
    except (InvalidTag, ValueError):
        return False
    return True
