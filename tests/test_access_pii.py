"""Personal data at rest: real AES-GCM, real HMAC, real Parquet files on disk."""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from creditgraph.errors import DecryptionError, EncryptionKeyError
from creditgraph.ingest import pii

PEOPLE = pd.DataFrame({
    "user_id": ["u1", "u2", "u3"],
    "name": ["Zhang Wei-Ling", "Oluwaseun Adebayo", None],
    "phone": ["+86 138 0013 8000", "+234 803 555 0199", "+44 7700 900123"],
    "national_id": ["110101199003074512", "A12345678Z", "QQ123456C"],
    "city": ["Hangzhou", "Lagos", "Leeds"],
})  # fmt: skip
PERSONAL = ["name", "phone", "national_id"]


def plain(values: pd.Series) -> list[str | None]:
    """Values with every kind of missing (None, NaN, NA) as None, for comparisons."""
    return [None if pd.isna(v) else v for v in values]


@pytest.fixture
def key() -> bytes:
    return base64.urlsafe_b64decode(pii.generate_key())


def encrypted(frame: pd.DataFrame, key: bytes) -> pd.DataFrame:
    out = frame.copy()
    for column in PERSONAL:
        out[column] = pii.encrypt_column(frame[column], key)
    return out


# -- the key -------------------------------------------------------------------------------
def test_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDITGRAPH_KEY", raising=False)
    with pytest.raises(EncryptionKeyError, match="CREDITGRAPH_KEY is not set.*generate_key"):
        pii.load_key()


@pytest.mark.parametrize("bad", ["not base64 at all!", base64.urlsafe_b64encode(b"short").decode()])
def test_malformed_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("CREDITGRAPH_KEY", bad)
    with pytest.raises(EncryptionKeyError, match="CREDITGRAPH_KEY must be urlsafe base64"):
        pii.load_key()


def test_generated_key_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    text = pii.generate_key()
    monkeypatch.setenv("CREDITGRAPH_KEY", text)
    assert pii.load_key() == base64.urlsafe_b64decode(text) and len(pii.load_key()) == 32
    assert pii.generate_key() != text


# -- encryption -------------------------------------------------------------------------------
def test_columns_round_trip_and_keep_missing_values(key: bytes) -> None:
    sealed = pii.encrypt_column(PEOPLE["name"], key)
    assert sealed.iloc[2] is None and isinstance(sealed.iloc[0], bytes)
    assert plain(pii.decrypt_column(sealed, key)) == plain(PEOPLE["name"])


def test_equal_values_encrypt_differently(key: bytes) -> None:
    sealed = pii.encrypt_column(pd.Series(["same", "same"], name="name"), key)
    assert sealed.iloc[0] != sealed.iloc[1]
    assert len(sealed.iloc[0]) == pii.NONCE_BYTES + len("same") + 16


def test_wrong_key_or_wrong_column_does_not_decrypt(key: bytes) -> None:
    sealed = pii.encrypt_column(PEOPLE["phone"], key)
    other = base64.urlsafe_b64decode(pii.generate_key())
    with pytest.raises(DecryptionError, match="'phone', row 0"):
        pii.decrypt_column(sealed, other)
    with pytest.raises(DecryptionError):  # a value moved to another column is refused
        pii.decrypt_column(sealed.rename("name"), key)
    tampered = sealed.copy()
    tampered.iloc[1] = tampered.iloc[1][:-1] + bytes([tampered.iloc[1][-1] ^ 1])
    with pytest.raises(DecryptionError, match="row 1"):
        pii.decrypt_column(tampered, key)


def test_a_column_needs_a_name(key: bytes) -> None:
    with pytest.raises(ValueError, match="name the column"):
        pii.encrypt_column(pd.Series(["x"]), key)


def test_stored_bytes_hold_no_plaintext(tmp_path: Path, key: bytes) -> None:
    # Uncompressed, so plaintext would show; the clear city column proves the search works.
    encrypted(PEOPLE, key).to_parquet(tmp_path / "users.parquet", compression=None)
    stored = (tmp_path / "users.parquet").read_bytes()
    assert b"Hangzhou" in stored and b"Leeds" in stored
    for column in PERSONAL:
        for value in PEOPLE[column].dropna():
            for fragment in (value, value[:6], value[-6:]):
                assert fragment.encode() not in stored, f"{column} leaks"
    back = pd.read_parquet(tmp_path / "users.parquet")
    assert plain(pii.decrypt_column(back["phone"], key)) == plain(PEOPLE["phone"])


# -- pseudonyms -------------------------------------------------------------------------------
def test_pseudonyms_are_keyed_stable_and_not_the_raw_key_hmac(key: bytes) -> None:
    ids = pii.pseudonymize(PEOPLE["national_id"], key)
    assert ids.equals(pii.pseudonymize(PEOPLE["national_id"], key))
    assert all(len(v) == 64 and int(v, 16) >= 0 for v in ids)
    other = pii.pseudonymize(PEOPLE["national_id"], base64.urlsafe_b64decode(pii.generate_key()))
    assert not (ids == other).any()
    raw_hmac = hmac.new(key, b"110101199003074512", hashlib.sha256).hexdigest()
    assert ids.iloc[0] != raw_hmac  # derived with HKDF, not the master key itself
    assert pii.pseudonymize(PEOPLE["name"], key).iloc[2] is None


# -- rotation ---------------------------------------------------------------------------------
@pytest.fixture
def data_dir(tmp_path: Path, key: bytes) -> Path:
    (tmp_path / "history").mkdir()
    encrypted(PEOPLE, key).to_parquet(tmp_path / "users.parquet")
    devices = pd.DataFrame({"user_id": ["u1", "u2"], "device": ["IMEI-356938035643809", None]})
    devices["device"] = pii.encrypt_column(devices["device"], key)
    devices.to_parquet(tmp_path / "history" / "devices.parquet")
    return tmp_path


def test_rotation_round_trips(data_dir: Path, key: bytes) -> None:
    new = base64.urlsafe_b64decode(pii.generate_key())
    before = pd.read_parquet(data_dir / "users.parquet")
    report = pii.rotate_key(data_dir, key, new)
    assert report.values == 3 + 2 + 3 + 1 and len(report.files) == 2
    after = pd.read_parquet(data_dir / "users.parquet")
    assert after[["user_id", "city"]].equals(before[["user_id", "city"]])
    for column in PERSONAL:
        assert plain(pii.decrypt_column(after[column], new)) == plain(PEOPLE[column])
        with pytest.raises(DecryptionError):
            pii.decrypt_column(after[column], key)
    devices = pd.read_parquet(data_dir / "history" / "devices.parquet")
    assert plain(pii.decrypt_column(devices["device"], new)) == ["IMEI-356938035643809", None]
    assert pq.read_schema(data_dir / "users.parquet").pandas_metadata is not None
    assert stat.S_IMODE((data_dir / "users.parquet").stat().st_mode) == 0o600  # still private
    # Rerunning (say, after a crash half-way) changes nothing and loses nothing.
    again = pii.rotate_key(data_dir, key, new)
    assert again.files == [] and again.already_rotated == 4
    names = pd.read_parquet(data_dir / "users.parquet")["name"]
    assert plain(pii.decrypt_column(names, new)) == plain(PEOPLE["name"])


def test_rotation_with_the_wrong_old_key_changes_nothing(data_dir: Path, key: bytes) -> None:
    files = sorted(data_dir.rglob("*.parquet"))
    before = [f.read_bytes() for f in files]
    wrong, new = (base64.urlsafe_b64decode(pii.generate_key()) for _ in range(2))
    with pytest.raises(DecryptionError, match="nothing was changed"):
        pii.rotate_key(data_dir, wrong, new)
    assert [f.read_bytes() for f in files] == before
    assert sorted(p.name for p in data_dir.rglob("*") if p.is_file()) == sorted(
        f.name for f in files
    )
