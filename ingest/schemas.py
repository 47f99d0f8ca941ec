"""One declared schema per input file: columns, types, required, allowed values, references.

These are the files of the synthetic world and of anyone's own data. Every
file may be CSV or Parquet (``<name>.csv`` or ``<name>.parquet``, not both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from creditgraph.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

EDUCATION = ("none", "secondary", "college", "bachelor", "postgraduate")
OCCUPATION = (
    "student", "employee", "self_employed", "civil_servant", "business_owner", "retired",
    "unemployed",
)  # fmt: skip
MERCHANT_CATEGORY = (
    "grocery", "restaurant", "apparel", "electronics", "travel", "services", "health",
    "education", "entertainment", "wholesale",
)  # fmt: skip
PRODUCT = ("loan", "credit_card")
BILL_KIND = ("electricity", "water", "gas", "mobile", "broadband")
RECORD_KIND = ("court_judgment", "enforcement_list", "tax_arrears", "bankruptcy")
RECORD_STATUS = ("open", "satisfied", "dismissed")


@dataclass(frozen=True)
class Column:
    """One column: ``kind`` is str, int, float, bool or date."""

    name: str
    kind: str
    required: bool = True
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    description: str = ""
    personal: bool = False  # a personal identifier: optional, encrypted at ingest, never in graph
    optional: bool = False  # the whole column may be left out of a file
    scheduled: bool = False  # a date that may lie ahead (see DateWindow.ahead_days)
    not_before: str | None = None  # a date never earlier than this other date of its row
    # Given exactly when another column holds one of some values (required then, empty else).
    given_when: tuple[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class FileSchema:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()  # unique together
    references: dict[str, str] = field(default_factory=dict)  # column -> referenced file
    required: bool = True
    # An event table's optional id column: unique in a file when given; without it a row
    # is identified by its content and its occurrence among identical rows of its file.
    event_id: str | None = None
    undirected: bool = False  # (src, dst) is an unordered pair: (b, a) is the key of (a, b)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def key_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The key columns of ``frame``; an undirected pair in (smaller, larger) order."""
        keys = frame[list(self.key)]
        if self.undirected:
            src, dst = frame["src"], frame["dst"]
            swap = (src > dst).to_numpy()
            keys = keys.assign(src=src.where(~swap, dst), dst=dst.where(~swap, src))
        return keys


def _id(name: str, description: str = "") -> Column:
    return Column(name, "str", description=description)


def _event_id(name: str) -> Column:
    meaning = "optional event id: a re-sent row with the same id updates in place"
    return Column(name, "str", required=False, optional=True, description=meaning)


@dataclass(frozen=True)
class DateWindow:
    """Plausible dates: none before ``earliest``, none after ``latest``.

    ``latest`` defaults to the day of the load plus one day (clocks and time
    zones): what has happened cannot be dated later. Scheduled dates
    (instalment due dates, observation dates) may run ``ahead_days`` past it.
    """

    earliest: date = date(1900, 1, 1)
    latest: date | None = None
    ahead_days: int = 366

    def __post_init__(self) -> None:
        if not date(1678, 1, 1) <= self.earliest < self.last(False) <= date(2261, 12, 31):
            raise ConfigError(
                f"date window (settings earliest_date, latest_date): earliest {self.earliest} "
                f"must precede latest {self.last(False)} (both within 1678-2261)"
            )

    def last(self, scheduled: bool) -> date:
        """The latest plausible date for a column (scheduled or not)."""
        latest = self.latest or date.today() + timedelta(days=1)
        return latest + timedelta(days=self.ahead_days) if scheduled else latest

    @classmethod
    def of(cls, earliest: str | date, latest: str | date | None) -> DateWindow:
        """From ISO strings or dates, as settings hold them (``latest`` None: today)."""
        return cls(
            _as_date(earliest, "earliest_date"),
            None if latest in (None, "") else _as_date(latest, "latest_date"),
        )


def _as_date(value: str | date, setting: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"setting {setting!r}: {value!r} is not a YYYY-MM-DD date") from None


USERS = FileSchema(
    "users",
    "One row per platform user (pseudonymous id; no personal identifiers).",
    (
        _id("user_id", "pseudonymous user id"),
        Column("signup_date", "date", description="account creation date"),
        Column("age", "int", min=18, max=100),
        Column("city", "str"),
        Column("phone_tenure_months", "int", min=0, description="months on current phone number"),
        Column("address_tenure_months", "int", min=0, description="months at current address"),
        Column("real_name_verified", "bool", description="identity verified against an ID"),
        Column("education", "str", allowed=EDUCATION),
        Column("occupation", "str", allowed=OCCUPATION),
        *(
            Column(name, "str", required=False, personal=True, optional=True, description=meaning)
            for name, meaning in (
                ("name", "full name"),
                ("phone", "phone number"),
                ("national_id", "national identity number"),
                ("address", "postal address"),
            )
        ),
    ),
    key=("user_id",),
)
MERCHANTS = FileSchema(
    "merchants",
    "Small businesses accepting payments; each is owned by a user.",
    (
        _id("merchant_id"),
        _id("owner_id", "user who owns the business"),
        Column("category", "str", allowed=MERCHANT_CATEGORY),
        Column("city", "str"),
        Column("opened_date", "date"),
    ),
    key=("merchant_id",),
    references={"owner_id": "users"},
)
FRIENDSHIPS = FileSchema(
    "friendships",
    "Undirected friendships, one row per pair, with interactions each side started.",
    (
        _id("src"),
        _id("dst"),
        Column("since", "date"),
        Column("src_interactions", "int", min=0, description="interactions src started, 12m"),
        Column("dst_interactions", "int", min=0, description="interactions dst started, 12m"),
    ),
    key=("src", "dst"),
    references={"src": "users", "dst": "users"},
    undirected=True,
)
TRANSFERS = FileSchema(
    "transfers",
    "Peer-to-peer money transfers (one row per transfer).",
    (
        _event_id("transfer_id"), _id("src"), _id("dst"), Column("date", "date"),
        Column("amount", "float", min=0),
    ),
    references={"src": "users", "dst": "users"},
    event_id="transfer_id",
)  # fmt: skip
PAYMENTS = FileSchema(
    "payments",
    "Payments from users to merchants (one row per payment).",
    (
        _event_id("payment_id"), _id("user_id"), _id("merchant_id"), Column("date", "date"),
        Column("amount", "float", min=0),
    ),
    references={"user_id": "users", "merchant_id": "merchants"},
    event_id="payment_id",
)  # fmt: skip
DEVICES = FileSchema(
    "devices",
    "Devices (opaque device tokens) each user has logged in from.",
    (_id("user_id"), _id("device_id"), Column("first_seen", "date")),
    key=("user_id", "device_id"),
    references={"user_id": "users"},
)
REPAYMENTS = FileSchema(
    "repayments",
    "Loan and credit-card instalments: what was due, what was paid, how late.",
    (
        _id("user_id"),
        _id("account_id"),
        Column("product", "str", allowed=PRODUCT),
        Column("due_date", "date", scheduled=True),
        Column("amount_due", "float", min=0),
        Column("amount_paid", "float", min=0),
        Column("days_late", "int", min=0, description="0 = on time; missing = unpaid yet"),
    ),
    key=("account_id", "due_date"),
    references={"user_id": "users"},
)
BILLS = FileSchema(
    "bills",
    "Utility and telecom bill payments.",
    (
        _id("user_id"),
        Column("month", "date"),
        Column("kind", "str", allowed=BILL_KIND),
        Column("amount", "float", min=0),
        Column("days_late", "int", min=0),
    ),
    key=("user_id", "month", "kind"),
    references={"user_id": "users"},
)
BALANCES = FileSchema(
    "balances",
    "Month-end account balance and number of financial products held.",
    (
        _id("user_id"),
        Column("month", "date"),
        Column("balance", "float"),
        Column("products", "int", min=0, description="wealth, insurance, fund products held"),
    ),
    key=("user_id", "month"),
    references={"user_id": "users"},
)
PUBLIC_RECORDS = FileSchema(
    "public_records",
    "Public records: court judgments, enforcement listings, tax arrears, bankruptcies.",
    (
        _id("user_id"),
        _id("record_id", "the record's id at its source"),
        Column("kind", "str", allowed=RECORD_KIND),
        Column("filed_date", "date", description="date the record was filed or listed"),
        Column("amount", "float", min=0, description="amount adjudged or owed"),
        Column("status", "str", allowed=RECORD_STATUS, description="as of the file"),
        Column(
            "satisfied_date",
            "date",
            required=False,
            not_before="filed_date",
            given_when=("status", ("satisfied",)),
            description="date paid or discharged; given for satisfied records only",
        ),
        Column("source", "str", description="the registry or court that reported it"),
    ),
    key=("record_id",),
    references={"user_id": "users"},
    required=False,
)
LABELS = FileSchema(
    "labels",
    "Outcome: default within 12 months after the observation date (1 = defaulted).",
    (
        _id("user_id"),
        Column("observation_date", "date", scheduled=True),
        Column("defaulted", "int", min=0, max=1),
    ),
    key=("user_id",),
    references={"user_id": "users"},
    required=False,
)

SCHEMAS: dict[str, FileSchema] = {
    s.name: s
    for s in (
        USERS, MERCHANTS, FRIENDSHIPS, TRANSFERS, PAYMENTS, DEVICES, REPAYMENTS, BILLS,
        BALANCES, PUBLIC_RECORDS, LABELS,
    )
}  # fmt: skip
# Load order: referenced files first.
LOAD_ORDER = tuple(SCHEMAS)
