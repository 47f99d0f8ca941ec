"""Synthetic platform world: users, their social and commercial graph, and credit outcomes.

``generate_world(n_users, seed=...)`` builds every input file declared in
:mod:`ingest.schemas` plus a ``truth`` table (the hidden variables the world was
drawn from, for tests and evaluation only; ingest never loads it). Everything is
vectorised numpy: 20,000 users take about half a second, 1,000,000 users about
half a minute and ~4.5 GB (more when writing files). The same ``n_users`` and
``seed`` always give identical tables.

The Markdown description of the files and of how risk is planted is kept in
``WORLD_DESCRIPTION`` (appended to this docstring below) so the README can reuse it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from creditgraph.errors import InvalidArgument
from creditgraph.ingest.schemas import (
    BILL_KIND,
    EDUCATION,
    MERCHANT_CATEGORY,
    OCCUPATION,
    PRODUCT,
    RECORD_KIND,
    RECORD_STATUS,
    SCHEMAS,
)

__all__ = ["WORLD_DESCRIPTION", "WORLD_TRUTH_COLUMNS", "generate_world"]

_FILES = (
    ("users", "One row per user: pseudonymous id (`u0000001`, numbered in signup order), "
     "signup date (2016-2024; recent sign-ups rarer), age, city (20 cities, Zipf-like), phone "
     "and address tenure, real-name verification (~85%), education, occupation."),
    ("merchants", "About one small business per 25 users, each owned by a distinct user (whose "
     "occupation is `business_owner` or `self_employed`); category, city (the owner's) and "
     "opening date."),
    ("friendships", "Undirected ties, one row per pair (`src` < `dst`), average degree ~10 with "
     "a heavy tail, ~80% inside the user's community; `since` and the interactions each side "
     "started in the last 12 months."),
    ("transfers", "Peer-to-peer transfers (~3 per user), mostly along friendships and weighted "
     "by how much the pair interacts; lognormal amounts; an id each (`t0000001`, numbered in "
     "date order)."),
    ("payments", "Payments from users to merchants (~8 per user), mostly to merchants of the "
     "user's own community, or of their city and credit tier; lognormal amounts by category; "
     "an id each (`p0000001`, numbered by user, then date)."),
    ("devices", "1-3 opaque device tokens per user with first-seen dates; a few devices are "
     "shared by friends, and every fraud ring shares 1-2."),
    ("repayments", "Monthly loan and credit-card instalments (1-3 accounts of up to 6-24 "
     "months) for the ~60% of users who are not thin-file: amount due, amount paid, days late."),
    ("bills", "1-3 utility/telecom bill kinds per user, monthly for the 12 months before the "
     "observation date (or since signup): amount and days late."),
    ("balances", "Month-end balance and number of financial products (0-4) for the 12 months "
     "before the observation date (or since signup)."),
    ("public_records", "Court judgments, enforcement listings, tax arrears and bankruptcies "
     "filed in the 7 years before the observation date, on ~4% of users (~5 records per 100 "
     "users): kind, filing date, amount, status (~60% open, ~30% satisfied with the date, ~8% "
     "dismissed) and the reporting registry; an id each (`r0000001`, numbered by user, then "
     "filing date)."),
    ("labels", "Observation date (2024-12-31 for a random half of users, 2025-06-30 for the "
     "rest) and whether the user defaulted in the 12 months after it."),
    ("truth", "Ground truth for tests only, never ingested: latent creditworthiness, "
     "community and its repayment norm, fraud ring (-1 if none), thin-file flag, credit "
     "tier as merchants see it (0-2), and the tier of the merchant the user owns (-1 if "
     "none)."),
)  # fmt: skip

_NOTES = """\
Dates are ISO `YYYY-MM-DD` (month columns hold the first day of the month); every
history row of a user (instalment due dates, bill and balance months, transfer and
payment dates, first-seen devices, friendships, public records' filing and satisfied
dates) falls on or before that user's observation date, so the two cohorts allow an
out-of-time split.

**How risk is planted.** Users belong to communities of 20-300 people (heavy-tailed
sizes) that mostly share a city. Each user's hidden `latent_credit` is a community
component (55% of its variance) plus individual noise, so friends' creditworthiness
correlates. Communities also differ in repayment norms (people who know defaulters
default more readily): a community's `default_norm` (standard deviation 0.7) shifts
its members' default log-odds but no behaviour before a default, so only the defaults
of other members reveal it. A user defaults with probability
`logistic(a - 1.7 * latent_credit + default_norm)`, the intercept `a` tuned for an
overall default rate of ~9%. The latent drives every observable trace, each with its
own noise: lateness, partial payments and 30/60/90+ day delinquency spells in
repayments (the strongest signal), lateness in bills (weaker), balance level, trend
and products, tenure, education and employment, and how reciprocal a user's
friendships are (friends of low-credit users answer less), and public records: the
lower the latent, the more records (rate ∝ `exp(-1.3 * latent_credit)`), the more recent
and the fewer satisfied; dismissals are random, fraud rings' fresh identities have none,
and the records are drawn after every other table, so the rest of the world is the same
with or without them. About 40% of users are
thin-file (no repayments; more often young or recent sign-ups); for them the graph
carries the signal their own history lacks: friends' repayment behaviour and the
community's defaults (homophily and norms), and the merchants they pay, since
customers pick merchants of their own community or of their own city and credit tier
and a merchant's quality follows its owner's credit. Finally about one user in 2,000
sits in a small fraud ring (5-12 accounts opened in the 6 months before their
observation date, mostly thin-file, short phone tenure, almost fully befriended among
themselves, sharing 1-2 devices and moving money to each other); a ring busts out as a
whole (most rings: 90% of members default; overall ~80% of ring members default).
"""
WORLD_DESCRIPTION = (
    "| File | What it holds |\n|---|---|\n"
    + "".join(f"| `{name}` | {text} |\n" for name, text in _FILES)
    + "\n"
    + _NOTES
)
"""Markdown: a table of the files and what each holds, then how risk is planted."""
__doc__ = f"{__doc__}\n{WORLD_DESCRIPTION}"

WORLD_TRUTH_COLUMNS: tuple[tuple[str, str], ...] = (
    ("user_id", "str"),
    ("latent_credit", "float"),
    ("community", "int"),
    ("default_norm", "float"),
    ("ring_id", "int"),
    ("thin_file", "bool"),
    ("credit_tier", "int"),
    ("owned_merchant_tier", "int"),
)
"""Columns (name, kind) of the ``truth`` table: ground truth for tests, never ingested."""

CITIES = (
    "Ashford", "Brookvale", "Cedarton", "Dunmore", "Eastwick", "Fairhaven", "Glenrock",
    "Harborview", "Ironbridge", "Juniper Falls", "Kingsbury", "Lakemont", "Millbrook",
    "Northfield", "Oakridge", "Port Ellis", "Queensferry", "Riverton", "Stonegate", "Westmere",
)  # fmt: skip

_DAY0 = np.datetime64("1970-01-01", "D")


def _day(iso: str) -> int:
    """Days since 1970-01-01 (dates are int32 day numbers internally)."""
    return int((np.datetime64(iso, "D") - _DAY0).astype(np.int64))


_SIGNUP_START = _day("2016-01-01")
_SIGNUP_END = _day("2024-11-30")  # ordinary users sign up at least a month before any cohort
_OBS_DATES = np.array([_day("2024-12-31"), _day("2025-06-30")], dtype=np.int32)
_N_CITIES = len(CITIES)
_CITY_P = 1.0 / np.arange(1, _N_CITIES + 1) ** 0.9
_CITY_P /= _CITY_P.sum()
# Community component share of latent_credit variance (homophily strength).
_SHARED_VAR = 0.55
_DEFAULT_SLOPE = 1.7  # default log-odds per unit of -latent_credit
_NORM_SD = 0.7  # spread of community repayment norms (default log-odds)
_TARGET_DEFAULT_RATE = 0.09

_OCC = {name: i for i, name in enumerate(OCCUPATION)}
# Hidden wealth offset by occupation (drives balances and amounts).
_OCC_WEALTH = np.array(
    [{"student": -0.7, "unemployed": -0.8, "business_owner": 0.6, "self_employed": 0.2}.get(o, 0.1)
     for o in OCCUPATION], dtype=np.float32,
)  # fmt: skip
# Merchant categories: share of merchants and typical payment size.
_CATEGORY = {
    "grocery": (0.22, 25), "restaurant": (0.2, 18), "apparel": (0.1, 60),
    "electronics": (0.06, 250), "travel": (0.04, 300), "services": (0.12, 45),
    "health": (0.08, 35), "education": (0.04, 80), "entertainment": (0.08, 22),
    "wholesale": (0.06, 400),
}  # fmt: skip
_CAT_P = np.array([_CATEGORY[c][0] for c in MERCHANT_CATEGORY])
_CAT_P /= _CAT_P.sum()
_CAT_MU = np.log([_CATEGORY[c][1] for c in MERCHANT_CATEGORY])
# Bill kinds: typical monthly amount and seasonal swing (heating/cooling).
_BILL = {
    "electricity": (55, 0.2), "water": (20, 0.05), "gas": (40, 0.35), "mobile": (30, 0.0),
    "broadband": (35, 0.0),
}  # fmt: skip
_BILL_MU = np.log([_BILL[k][0] for k in BILL_KIND])
_BILL_SEASONAL = np.array([_BILL[k][1] for k in BILL_KIND])
# Public records: expected records per ordinary user; per kind its share, median amount and
# the registry that reports it.
_RECORDS_PER_USER = 0.05
_RECORD = {
    "court_judgment": (0.40, 3000, "district_court"),
    "enforcement_list": (0.20, 6000, "enforcement_registry"),
    "tax_arrears": (0.30, 1200, "tax_office"),
    "bankruptcy": (0.10, 25000, "insolvency_register"),
}  # fmt: skip
_RECORD_P = np.array([_RECORD[k][0] for k in RECORD_KIND])
_RECORD_MU = np.log([_RECORD[k][1] for k in RECORD_KIND])
_RECORD_SOURCE = tuple(_RECORD[k][2] for k in RECORD_KIND)
_RECORD_DAYS = 7 * 365  # records are filed within 7 years before the observation date

_ARROW_TYPES = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
}


# --------------------------------------------------------------------------- helpers


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _month(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of int day numbers (via a lookup table over their range)."""
    lo = int(days.min()) if len(days) else 0
    span = np.arange(lo, lo + (int(days.max()) - lo + 1 if len(days) else 1))
    table = span.astype("datetime64[D]").astype("datetime64[M]").astype(np.int32)
    return table[days - lo]


def _month_start(months: np.ndarray) -> np.ndarray:
    """Day number of the first day of each month number (via a lookup table)."""
    lo = int(months.min()) if len(months) else 0
    span = np.arange(lo, lo + (int(months.max()) - lo + 1 if len(months) else 1))
    table = span.astype("datetime64[M]").astype("datetime64[D]").astype(np.int32)
    return table[months - lo]


def _between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Uniform integer day in [lo, hi] (caller guarantees lo <= hi)."""
    span = (hi - lo + 1).astype(np.float64)
    return (lo + np.floor(rng.random(len(lo)) * span)).astype(np.int32)


def _lognormal(rng: np.random.Generator, mu: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(mu + sigma * rng.standard_normal(len(mu), dtype=np.float32))


def _money(x: np.ndarray) -> np.ndarray:
    return np.round(x.astype(np.float64), 2)


def _rank_uniform(x: np.ndarray) -> np.ndarray:
    """Ranks mapped to (0, 1): a uniform variable that keeps the ordering of ``x``."""
    rank = np.empty(len(x), dtype=np.float64)
    rank[np.argsort(x, kind="stable")] = np.arange(len(x))
    return (rank + 0.5) / len(x)


def _weighted(rng: np.random.Generator, cum: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with probability proportional to weights whose cumsum is ``cum``,
    returned in random order."""
    # Searching sorted draws is several times faster (cache friendly); shuffle after.
    idx = np.searchsorted(cum, np.sort(rng.random(size)) * cum[-1], side="right")
    return rng.permutation(np.minimum(idx, len(cum) - 1))


def _unique(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based: faster than np.unique's hashing here)."""
    x = np.sort(x)
    return x[np.concatenate(([True], x[1:] != x[:-1]))] if len(x) else x


def _over_users(effect: np.ndarray, community: np.ndarray, sd: float | np.floating) -> np.ndarray:
    """Community effects shifted and scaled so that over users (``effect[community]``)
    they have mean 0 and standard deviation ``sd``; all 0 in a one-community world."""
    if len(effect) < 2:
        return np.zeros_like(effect)
    shared = effect[community]
    return (effect - shared.mean()) / shared.std() * sd


def _pick_in_group(
    rng: np.random.Generator,
    item_key: np.ndarray,
    query_key: np.ndarray,
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """For each query a random item with the same key (prob. ~ weight), or -1 if none."""
    order = np.argsort(item_key, kind="stable")
    sorted_key = item_key[order]
    new = np.concatenate(([True], sorted_key[1:] != sorted_key[:-1]))
    keys, start = sorted_key[new], np.flatnonzero(new)
    count = np.diff(np.append(start, len(sorted_key)))
    pos = np.minimum(np.searchsorted(keys, query_key), len(keys) - 1)
    found = keys[pos] == query_key
    first, size = start[pos], count[pos]
    if weight is None:
        pick = first + np.floor(rng.random(len(query_key)) * size).astype(np.int64)
    else:
        cum = np.cumsum(weight[order], dtype=np.float64)
        lo = np.where(first > 0, cum[first - 1], 0.0)
        target = lo + rng.random(len(query_key)) * (cum[first + size - 1] - lo)
        by_target = np.argsort(target)  # sorted searches are much faster
        pick = np.empty(len(target), dtype=np.int64)
        pick[by_target] = np.searchsorted(cum, target[by_target], side="right")
    pick = np.clip(pick, first, first + size - 1)
    return np.where(found, order[pick], -1)


def _codes(prefix: str, count: int) -> pa.Array:
    """``prefix`` + zero-padded 1-based numbers (width >= 7, fits ``count``)."""
    width = max(7, len(str(count)))
    num = np.arange(1, count + 1, dtype=np.int64)
    buf = np.empty((count, len(prefix) + width), dtype=np.uint8)
    buf[:, : len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    for k in range(width):  # loop over digit positions, not rows
        buf[:, len(prefix) + width - 1 - k] = num // 10**k % 10 + 48
    return pa.array(buf.view(f"S{buf.shape[1]}").ravel(), type=pa.binary()).cast(pa.string())


def _tokens(prefix: str, count: int, key: int) -> pa.Array:
    """Opaque 40-bit hex tokens: a keyed bijection of 0..count-1, so always unique."""
    mask = np.uint64((1 << 40) - 1)
    x = np.arange(count, dtype=np.uint64)
    x = (x * np.uint64(0x9E3779B97F4A7C15) + np.uint64(key)) & mask  # odd multiplier
    x ^= x >> np.uint64(19)
    x = (x * np.uint64(0xBF58476D1CE4E5B9)) & mask
    x ^= x >> np.uint64(17)
    hexd = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    buf = np.empty((count, len(prefix) + 10), dtype=np.uint8)
    buf[:, : len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    for k in range(10):  # loop over hex digit positions
        buf[:, len(prefix) + 9 - k] = hexd[((x >> np.uint64(4 * k)) & np.uint64(15)).astype(int)]
    return pa.array(buf.view(f"S{buf.shape[1]}").ravel(), type=pa.binary()).cast(pa.string())


def _take(ids: pa.Array, idx: np.ndarray) -> pa.Array:
    """``ids[idx]`` as an Arrow string array (ids are built once, then gathered)."""
    return ids.take(pa.array(idx.astype(np.int64, copy=False)))


def _labels(values: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    """Category names for integer codes, without building a numpy array of strings."""
    return _take(pa.array(values, type=pa.string()), codes)


# --------------------------------------------------------------------------- users


@dataclass
class _People:
    """User-level arrays, indexed 0..n-1 in signup order (index i is id ``u{i+1}``)."""

    n: int
    community: np.ndarray  # int32
    city: np.ndarray  # int16
    latent: np.ndarray  # float32
    ring: np.ndarray  # int32, -1 if none
    n_rings: int
    signup: np.ndarray  # int32 day
    obs: np.ndarray  # int32 day
    age: np.ndarray  # int16
    thin: np.ndarray  # bool, planned thin-file (no repayment accounts)
    occupation: np.ndarray  # int8 index into OCCUPATION
    education: np.ndarray  # int8 index into EDUCATION
    phone_tenure: np.ndarray
    address_tenure: np.ndarray
    verified: np.ndarray
    social: np.ndarray  # float32 sociability (friendship weight)
    activity: np.ndarray  # float32 spending activity
    wealth: np.ndarray  # float32 hidden wealth (balances, amounts)
    tier: np.ndarray  # int8 credit tier 0..2 as seen by merchants

    @property
    def in_ring(self) -> np.ndarray:
        return self.ring >= 0


def _communities(rng: np.random.Generator, n: int) -> np.ndarray:
    """Community sizes 20-300, heavy-tailed (Lomax), summing to ``n``."""
    sizes = np.minimum(20 + np.floor(25 * rng.pareto(1.3, n // 20 + 2)), 300).astype(np.int64)
    cum = np.cumsum(sizes)
    k = int(np.searchsorted(cum, n))
    sizes = sizes[: k + 1].copy()
    sizes[k] -= cum[k] - n
    if k > 0 and sizes[k] < 20:  # fold a small remainder into the previous community
        sizes[k - 1] += sizes[k]
        sizes = sizes[:k]
    return sizes


def _people(rng: np.random.Generator, n: int) -> _People:
    sizes = _communities(rng, n)
    n_comm = len(sizes)
    community = rng.permutation(np.repeat(np.arange(n_comm, dtype=np.int32), sizes))
    comm_city = rng.choice(_N_CITIES, n_comm, p=_CITY_P)
    comm_effect = rng.normal(0.0, np.sqrt(_SHARED_VAR), n_comm).astype(np.float32)
    # 85% live in their community's city.
    city = np.where(
        rng.random(n) < 0.85, comm_city[community], rng.choice(_N_CITIES, n, p=_CITY_P)
    ).astype(np.int16)
    # Standardise over users so small worlds (few communities) get the intended share too.
    comm_effect = _over_users(comm_effect, community, np.float32(np.sqrt(_SHARED_VAR)))
    noise = rng.normal(0.0, np.sqrt(1 - _SHARED_VAR), n).astype(np.float32)
    latent = comm_effect[community] + noise

    # Fraud rings: small groups of otherwise random users, one city and one cohort each.
    n_rings = max(3, n // 2000)
    ring_sizes = rng.integers(5, 13, n_rings)
    members = rng.permutation(n)[: ring_sizes.sum()]
    ring = np.full(n, -1, dtype=np.int32)
    ring[members] = np.repeat(np.arange(n_rings, dtype=np.int32), ring_sizes)
    in_ring = ring >= 0
    n_ring = int(in_ring.sum())
    latent[in_ring] = rng.normal(-1.0, 0.6, n_ring)
    city[in_ring] = rng.choice(_N_CITIES, n_rings, p=_CITY_P)[ring[in_ring]]

    # Two observation cohorts, half each; a ring shares its cohort.
    obs = _OBS_DATES[(rng.random(n) < 0.5).astype(np.int64)]
    obs[in_ring] = _OBS_DATES[rng.integers(0, 2, n_rings)][ring[in_ring]]

    age = np.clip(np.round(18 + rng.gamma(2.2, 9.0, n) + 1.5 * latent), 18, 80)
    age[in_ring] = rng.integers(19, 36, n_ring)
    # Signup: Beta(1, 1.5) over 2016..2024-11 so recent sign-ups are rarer; older and
    # better-credit users tend to have joined earlier (rank copula keeps the marginal).
    v = _rank_uniform(0.2 * latent + 0.03 * (age - 38) + rng.standard_normal(n))
    recency = 1.0 - v ** (1 / 1.5)
    signup = (_SIGNUP_START + np.round(recency * (_SIGNUP_END - _SIGNUP_START))).astype(np.int32)
    signup[in_ring] = obs[in_ring] - rng.integers(15, 181, n_ring)
    recency[in_ring] = 1.0

    # Number users in signup order, as a platform would.
    order = np.argsort(signup, kind="stable")
    community, city, latent, ring = community[order], city[order], latent[order], ring[order]
    obs, age, signup, recency = obs[order], age[order], signup[order], recency[order]
    in_ring = ring >= 0

    # Thin-file (~40%): more likely young or recently joined; rings mostly thin.
    score = -0.7 * (age - 38) / 13 + 0.9 * (recency - recency.mean()) / recency.std()
    score = score + rng.logistic(0.0, 1.0, n)
    score[_month(obs) - _month(signup) < 2] = np.inf  # no room for any instalment
    thin = score > np.quantile(score[~in_ring], 0.60)
    thin[in_ring] = rng.random(n_ring) < 0.75

    occupation = _occupations(rng, age, latent)
    edu_score = 0.35 * latent + rng.standard_normal(n) - 0.8 * (age < 22)
    cuts = np.quantile(edu_score, [0.05, 0.35, 0.55, 0.9])  # none/secondary/college/bachelor/pg
    education = np.searchsorted(cuts, edu_score).astype(np.int8)

    months_adult = (age - 16) * 12
    phone = np.minimum(rng.exponential(np.exp(3.4 + 0.2 * latent)), months_adult)
    phone[in_ring] = rng.exponential(3.0, n_ring)  # fresh SIM cards
    address = np.minimum(rng.exponential(np.exp(3.5 + 0.15 * latent + 0.01 * (age - 38))),
                         months_adult)  # fmt: skip
    address[in_ring] = rng.exponential(8.0, n_ring)
    verified = rng.random(n) < _sigmoid(1.8 + 0.4 * latent)
    verified[in_ring] = rng.random(n_ring) < 0.4

    social = rng.lognormal(-0.4, 0.9, n).astype(np.float32)  # heavy-tailed degree
    social[in_ring] = 0.15  # fresh accounts: few ties outside the ring
    activity = rng.lognormal(-0.18 + 0.1 * latent, 0.6).astype(np.float32)
    activity[in_ring] = 0.3
    tier_score = 0.8 * latent + rng.normal(0.0, 0.6, n)
    tier = np.searchsorted(np.quantile(tier_score, [1 / 3, 2 / 3]), tier_score).astype(np.int8)

    return _People(
        n=n, community=community, city=city, latent=latent.astype(np.float32), ring=ring,
        n_rings=n_rings, signup=signup, obs=obs.astype(np.int32), age=age.astype(np.int16),
        thin=thin, occupation=occupation, education=education,
        phone_tenure=np.round(phone).astype(np.int64),
        address_tenure=np.round(address).astype(np.int64), verified=verified, social=social,
        activity=activity, wealth=np.zeros(n, np.float32), tier=tier,
    )  # fmt: skip


def _occupations(rng: np.random.Generator, age: np.ndarray, latent: np.ndarray) -> np.ndarray:
    """Occupation drawn from age- and credit-dependent probabilities (one column each)."""
    n = len(age)
    w = np.zeros((n, len(OCCUPATION)), dtype=np.float32)
    student = _sigmoid((23 - age) / 1.5) * 0.85
    retired = _sigmoid((age - 63) / 2.0) * 0.9
    rest = 1.0 - student - retired
    w[:, _OCC["student"]] = student
    w[:, _OCC["retired"]] = retired
    w[:, _OCC["employee"]] = rest * 0.58
    w[:, _OCC["civil_servant"]] = rest * 0.12 * np.exp(0.3 * latent)
    w[:, _OCC["self_employed"]] = rest * 0.16
    w[:, _OCC["business_owner"]] = rest * 0.03
    w[:, _OCC["unemployed"]] = rest * 0.07 * np.exp(-0.6 * latent)
    cum = np.cumsum(w, axis=1)
    u = rng.random(n, dtype=np.float32) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), len(OCCUPATION) - 1).astype(np.int8)


def _merchants(rng: np.random.Generator, p: _People) -> dict[str, np.ndarray]:
    """Pick distinct owners (they become business owners) and their merchants' traits."""
    n_m = max(1, p.n // 25)
    eligible = (p.age >= 23) & (p.age <= 70) & ~p.in_ring
    key = rng.random(p.n)
    key[~eligible] = 2.0  # random keys: the n_m smallest are a uniform sample of eligibles
    owner = np.sort(np.argpartition(key, n_m - 1)[:n_m])
    owner = rng.permutation(owner)  # merchant numbering unrelated to owner numbering
    p.occupation[owner] = np.where(
        rng.random(n_m) < 0.7, _OCC["business_owner"], _OCC["self_employed"]
    )
    quality = 0.8 * p.latent[owner] + rng.normal(0.0, 0.6, n_m)
    tier = np.searchsorted(np.quantile(quality, [1 / 3, 2 / 3]), quality).astype(np.int8)
    latest = _OBS_DATES[0] - 30
    # Opened after the owner joined, skewed early (most businesses are established).
    opened = p.signup[owner] + np.floor(
        rng.random(n_m) ** 2 * np.maximum(latest - p.signup[owner], 0)
    ).astype(np.int32)
    return {
        "owner": owner,
        "category": rng.choice(len(MERCHANT_CATEGORY), n_m, p=_CAT_P),
        "city": p.city[owner],
        "community": p.community[owner],
        "tier": tier,
        "opened": opened,
    }


def _finish_people(rng: np.random.Generator, p: _People) -> None:
    """Hidden wealth, once occupations (incl. merchant owners) are final."""
    p.wealth = (0.35 * p.latent + _OCC_WEALTH[p.occupation] + rng.normal(0.0, 0.7, p.n)).astype(
        np.float32
    )
    p.wealth[p.in_ring] -= 1.0


# --------------------------------------------------------------------------- graph


def _friendships(rng: np.random.Generator, p: _People) -> dict[str, np.ndarray]:
    n = p.n
    cum = np.cumsum(p.social, dtype=np.float64)
    # ~80% of ties inside the community (both ends drawn by sociability), the rest
    # half within the city and half anywhere. Oversampled: duplicates are dropped.
    m_in, m_out = int(5.0 * n), int(1.15 * n)
    src = _weighted(rng, cum, m_in + m_out)
    dst = np.empty_like(src)
    dst[:m_in] = _pick_in_group(rng, p.community, p.community[src[:m_in]], p.social)
    half = m_in + m_out // 2
    dst[m_in:half] = _pick_in_group(rng, p.city, p.city[src[m_in:half]], p.social)
    dst[half:] = _weighted(rng, cum, len(src) - half)

    # Rings: every pair of members befriended with probability 0.9.
    ring_members = np.flatnonzero(p.in_ring)
    ring_members = ring_members[np.argsort(p.ring[ring_members], kind="stable")]
    r_sizes = np.bincount(p.ring[ring_members], minlength=p.n_rings)
    r_start = np.cumsum(r_sizes) - r_sizes
    ii, jj = np.triu_indices(int(r_sizes.max()), k=1)
    ok = (jj[None, :] < r_sizes[:, None]) & (rng.random((p.n_rings, len(ii))) < 0.9)
    ring_of, pair = np.nonzero(ok)
    src = np.concatenate([src, ring_members[r_start[ring_of] + ii[pair]]])
    dst = np.concatenate([dst, ring_members[r_start[ring_of] + jj[pair]]])

    a, b = np.minimum(src, dst).astype(np.int64), np.maximum(src, dst).astype(np.int64)
    keep = a != b
    pairs = _unique(a[keep] * n + b[keep])  # one row per unordered pair, sorted
    a, b = pairs // n, pairs % n
    lo = np.maximum(p.signup[a], p.signup[b])
    hi = np.minimum(p.obs[a], p.obs[b])  # never after either user's observation date
    keep = lo <= hi
    a, b, lo, hi = a[keep], b[keep], lo[keep], hi[keep]
    since = _between(rng, lo, hi)

    # Interactions in the last 12 months: tie strength x (initiator 1, other side rec).
    # Reciprocity falls with the lower credit of the pair: friends of bad payers
    # answer less. Ring ties are strong and reciprocal.
    m = len(a)
    ring_edge = (p.ring[a] >= 0) & (p.ring[a] == p.ring[b])
    strength = rng.lognormal(np.log(8.0), 0.8, m) * np.where(
        p.community[a] == p.community[b], 1.5, 1.0
    )
    strength[ring_edge] *= 3.0
    rec = _sigmoid(0.8 + 0.5 * np.minimum(p.latent[a], p.latent[b]) + rng.normal(0, 1.0, m))
    rec[ring_edge] = rng.uniform(0.6, 1.0, int(ring_edge.sum()))
    src_starts = rng.random(m) < 0.5
    lam_src = np.where(src_starts, strength, strength * rec)
    lam_dst = np.where(src_starts, strength * rec, strength)
    # A tie that began recently had less time to interact.
    recent = np.minimum((hi - since + 1) / 365.0, 1.0)
    return {
        "src": a,
        "dst": b,
        "since": since,
        "src_interactions": rng.poisson(lam_src * recent),
        "dst_interactions": rng.poisson(lam_dst * recent),
    }


def _transfers(
    rng: np.random.Generator, p: _People, fr: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    n = p.n
    # ~85% along friendships, weighted by interactions; direction by who interacts more.
    si, di = fr["src_interactions"], fr["dst_interactions"]
    n_f = int(2.6 * n)
    e = _weighted(rng, np.cumsum(si + di + 1.0), n_f)
    forward = rng.random(n_f) < (si[e] + 0.5) / (si[e] + di[e] + 1.0)
    src_f = np.where(forward, fr["src"][e], fr["dst"][e])
    dst_f = np.where(forward, fr["dst"][e], fr["src"][e])
    lo_f = fr["since"][e]

    # ~15% to non-friends: half in the same city, half anywhere.
    n_r = int(0.45 * n)
    src_r = _weighted(rng, np.cumsum(p.activity, dtype=np.float64), n_r)
    dst_r = rng.integers(0, n, n_r)
    same_city = rng.random(n_r) < 0.5
    dst_r[same_city] = _pick_in_group(rng, p.city, p.city[src_r[same_city]])
    dst_r = np.where(dst_r == src_r, (dst_r + 1) % n, dst_r)

    # Rings move money around: each member sends ~8 transfers to other members.
    members = np.flatnonzero(p.in_ring)
    members = members[np.argsort(p.ring[members], kind="stable")]
    r_sizes = np.bincount(p.ring[members], minlength=p.n_rings)
    r_start = (np.cumsum(r_sizes) - r_sizes)[p.ring[members]]
    r_size = r_sizes[p.ring[members]]
    pos = np.arange(len(members)) - r_start
    k = rng.poisson(8.0, len(members))
    src_pos = np.repeat(pos, k)
    r0, rs = np.repeat(r_start, k), np.repeat(r_size, k)
    dst_pos = (src_pos + rng.integers(1, rs)) % rs  # any other member
    src_g, dst_g = members[r0 + src_pos], members[r0 + dst_pos]

    src = np.concatenate([src_f, src_r, src_g])
    dst = np.concatenate([dst_f, dst_r, dst_g])
    hi = np.minimum(p.obs[src], p.obs[dst])
    lo = np.maximum(np.maximum(p.signup[src], p.signup[dst]), hi - 364)
    lo[:n_f] = np.maximum(lo[:n_f], lo_f)
    mu = np.log(40.0) + 0.3 * p.wealth[src]
    mu[n_f + n_r :] = np.log(400.0)
    amount = _lognormal(rng, mu, 1.0)
    keep = lo <= hi
    date = _between(rng, lo[keep], hi[keep])
    src, dst, amount = src[keep], dst[keep], amount[keep]
    order = np.lexsort((src, date))
    return {
        "src": src[order],
        "dst": dst[order],
        "date": date[order],
        "amount": np.maximum(_money(amount[order]), 0.01),
    }


def _payments(
    rng: np.random.Generator, p: _People, mer: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    n_m = len(mer["owner"])
    k = rng.poisson(8.0 * p.activity)
    user = np.repeat(np.arange(p.n), k)
    r = len(user)
    # Merchant choice: 55% own community's merchants, 35% own city and credit tier,
    # 10% anywhere; falling back to city, then anywhere, when a group has none.
    mode = rng.random(r)
    m = np.full(r, -1, dtype=np.int64)
    own = mode < 0.55
    m[own] = _pick_in_group(rng, mer["community"], p.community[user[own]])
    tiered = (mode >= 0.55) & (mode < 0.9)
    key_m = mer["city"].astype(np.int64) * 3 + mer["tier"]
    m[tiered] = _pick_in_group(rng, key_m, p.city[user[tiered]].astype(np.int64) * 3
                               + p.tier[user[tiered]])  # fmt: skip
    miss = (m < 0) & (mode < 0.9)
    m[miss] = _pick_in_group(rng, mer["city"], p.city[user[miss]])
    miss = m < 0
    m[miss] = rng.integers(0, n_m, int(miss.sum()))
    hi = p.obs[user]
    lo = np.maximum(np.maximum(p.signup[user], mer["opened"][m]), hi - 364)
    keep = (lo <= hi) & (mer["owner"][m] != user)  # owners do not buy from themselves
    user, m, lo, hi = user[keep], m[keep], lo[keep], hi[keep]
    date = _between(rng, lo, hi)
    amount = _lognormal(rng, _CAT_MU[mer["category"][m]] + 0.2 * p.wealth[user], 0.7)
    order = np.argsort(user * 365 + (date - hi + 364))  # by user, then date (users sorted)
    return {
        "user_id": user[order],
        "merchant_id": m[order],
        "date": date[order],
        "amount": np.maximum(_money(amount[order]), 0.01),
    }


def _devices(
    rng: np.random.Generator, p: _People, fr: dict[str, np.ndarray], key: int
) -> dict[str, object]:
    n = p.n
    u = rng.random(n)
    k = 1 + (u > 0.6) + (u > 0.9)  # 1-3 personal devices (60/30/10%)
    in_ring = p.in_ring
    k[in_ring] = rng.random(int(in_ring.sum())) < 0.4  # ring members: mostly ring devices
    user = np.repeat(np.arange(n), k)
    first = np.zeros(len(user), dtype=bool)
    first[np.cumsum(k)[k > 0] - k[k > 0]] = True
    device = np.arange(len(user), dtype=np.int64)
    n_dev = len(user)

    # ~1.5% of friendships share a device (family tablet): the dst logs in on src's first.
    first_dev = np.full(n, -1, dtype=np.int64)
    first_dev[user[first]] = device[first]
    e = np.flatnonzero(rng.random(len(fr["src"])) < 0.015)
    e = e[(first_dev[fr["src"][e]] >= 0) & (k[fr["dst"][e]] < 3) & ~in_ring[fr["dst"][e]]]
    _, once = np.unique(fr["dst"][e], return_index=True)  # one shared device each: <= 3
    share_user, share_dev = fr["dst"][e[once]], first_dev[fr["src"][e[once]]]

    # Each ring owns 1-2 devices; every member uses the first, ~70% the second too.
    ring_devs = rng.integers(1, 3, p.n_rings)
    ring_dev0 = n_dev + np.cumsum(ring_devs) - ring_devs
    members = np.flatnonzero(in_ring)
    second = (ring_devs[p.ring[members]] == 2) & (rng.random(len(members)) < 0.7)
    ring_user = np.concatenate([members, members[second]])
    ring_dev = np.concatenate([ring_dev0[p.ring[members]], ring_dev0[p.ring[members[second]]] + 1])

    user = np.concatenate([user, share_user, ring_user])
    device = np.concatenate([device, share_dev, ring_dev])
    first = np.concatenate([first, np.zeros(len(share_user) + len(ring_user), dtype=bool)])
    pair = user * (n_dev + 2 * p.n_rings) + device
    order = np.argsort(pair, kind="stable")  # by user, then device; drop repeated pairs
    order = order[np.concatenate(([True], pair[order][1:] != pair[order][:-1]))]
    user, device, first = user[order], device[order], first[order]
    # A user's first personal device is first seen at signup; others later.
    lo, hi = p.signup[user], p.obs[user]
    seen = np.where(first, lo, _between(rng, lo, hi))
    tokens = _tokens("d", n_dev + 2 * p.n_rings, key)
    return {"user_id": user, "device_id": _take(tokens, device), "first_seen": seen}


# --------------------------------------------------------------------------- history


def _repayments(rng: np.random.Generator, p: _People) -> dict[str, np.ndarray]:
    users = np.flatnonzero(~p.thin)
    u = rng.random(len(users))
    acc_user = np.repeat(users, 1 + (u > 0.5) + (u > 0.85))  # 1-3 accounts (50/35/15%)
    a = len(acc_user)
    is_loan = rng.random(a) < 0.45
    length = rng.integers(6, 25, a)
    # Most accounts run up to the observation month; some closed up to 6 months earlier.
    end_m = _month(p.obs[acc_user]) - np.where(rng.random(a) < 0.7, 0, rng.integers(1, 7, a))
    start_m = np.maximum(end_m - length + 1, _month(p.signup[acc_user]) + 1)
    length = end_m - start_m + 1
    keep = length >= 1
    acc_user, is_loan, start_m, length = acc_user[keep], is_loan[keep], start_m[keep], length[keep]
    a = len(acc_user)
    due_day = rng.integers(0, 28, a)
    # Account badness: the user's -latent plus account noise. Everything that depends on
    # it is computed per account, then gathered per instalment.
    bad = -p.latent[acc_user] + rng.normal(0.0, 0.45, a).astype(np.float32)
    p_late = _sigmoid(-2.6 + 1.2 * bad).astype(np.float32)
    # Days late when late: geometric with mean 2 + 3 e^(bad/2), drawn by inversion.
    inv_log_q = (1.0 / np.log1p(-1.0 / (2.0 + 3.0 * np.exp(0.5 * bad)))).astype(np.float32)
    p_partial = _sigmoid(-2.2 + 0.9 * bad).astype(np.float32)
    # One delinquency spell (30/60/90+ days): rare for good payers, common for bad ones.
    spell = rng.random(a) < _sigmoid(-4.3 + 1.6 * bad)
    spell_at = np.floor(rng.random(a) * length).astype(np.int32)
    spell_len = rng.geometric(0.4, a).astype(np.int32)
    instalment = _lognormal(rng, np.log(180.0) + 0.5 * p.wealth[acc_user], 0.6)
    card_mu = np.log(120.0) + 0.4 * p.wealth[acc_user]

    row = np.repeat(np.arange(a, dtype=np.int32), length)
    r = len(row)
    t = (np.arange(r) - np.repeat(np.cumsum(length) - length, length)).astype(np.int32)
    due = _month_start(start_m[row] + t) + due_day[row]
    amount_due = instalment[row]
    card = np.flatnonzero(~is_loan[row])
    amount_due[card] = _lognormal(rng, card_mu[row[card]], 0.7)  # card statements vary
    amount_due = np.maximum(_money(amount_due), 1.0)
    amount_paid = amount_due.copy()
    days_late = np.zeros(r, dtype=np.int64)

    late = np.flatnonzero(rng.random(r, dtype=np.float32) < p_late[row])
    days = 1 + np.floor(np.log(rng.random(len(late), dtype=np.float32)) * inv_log_q[row[late]])
    days_late[late] = np.minimum(days, 29)
    partial = late[rng.random(len(late), dtype=np.float32) < p_partial[row[late]]]
    amount_paid[partial] = amount_due[partial] * rng.uniform(0.2, 0.95, len(partial))

    # Spell months: 30, 60, ... days late (capped at 6 months); unpaid, except maybe a
    # part of the first.
    in_acc = np.flatnonzero(spell[row])
    j = t[in_acc] - spell_at[row[in_acc]]
    hit = (j >= 0) & (j < spell_len[row[in_acc]])
    in_spell, j = in_acc[hit], j[hit]
    days_late[in_spell] = 30 * np.minimum(j + 1, 6) + rng.integers(0, 10, len(in_spell))
    some = (j == 0) & (rng.random(len(j)) < 0.3)
    amount_paid[in_spell] = np.where(
        some, amount_due[in_spell] * rng.uniform(0.1, 0.45, len(j)), 0.0
    )
    product = np.where(is_loan, PRODUCT.index("loan"), PRODUCT.index("credit_card"))
    return {
        "user_id": acc_user[row],
        "account_id": _take(_codes("a", a), row),
        "product": _labels(PRODUCT, product[row]),
        "due_date": due,
        "amount_due": amount_due,
        "amount_paid": _money(amount_paid),
        "days_late": days_late,
    }


def _history_months(p: _People, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (owner index into ``users``, month, months before the observation month) for
    the 12 months up to the observation month, none before the signup month."""
    end = _month(p.obs[users])
    count = np.clip(end - _month(p.signup[users]) + 1, 1, 12)
    owner = np.repeat(np.arange(len(users), dtype=np.int32), count)
    back = (np.repeat(np.cumsum(count), count) - 1 - np.arange(len(owner))).astype(np.int32)
    return owner, end[owner] - back, back


def _bills(rng: np.random.Generator, p: _People) -> dict[str, object]:
    n = p.n
    u = rng.random(n)
    k = 1 + (u > 0.45) + (u > 0.85)  # 1-3 kinds (45/40/15%)
    kinds = np.argsort(rng.random((n, len(BILL_KIND)), dtype=np.float32), axis=1)
    pick = np.arange(len(BILL_KIND))[None, :] < k[:, None]
    pair_user = np.nonzero(pick)[0]
    pair_kind = kinds[pick].astype(np.int8)
    user_mu = 0.15 * p.wealth + rng.normal(0.0, 0.3, n)  # bigger homes, bigger bills
    pair_mu = (_BILL_MU[pair_kind] + user_mu[pair_user]).astype(np.float32)
    # A weaker, noisier signal than repayments: user-level badness with more noise.
    bad = -p.latent + rng.normal(0.0, 1.1, n).astype(np.float32)
    p_very = _sigmoid(-5.5 + 1.2 * bad).astype(np.float32)  # 30+ days late
    p_late = p_very + _sigmoid(-2.0 + 0.6 * bad).astype(np.float32)
    inv_log_q = (1.0 / np.log1p(-1.0 / (3.0 + 3.0 * np.exp(0.4 * bad)))).astype(np.float32)

    owner, month, _ = _history_months(p, pair_user)
    user, kind = pair_user[owner], pair_kind[owner]
    r = len(owner)
    # Seasonal heating/cooling: a (kind, calendar month) lookup table.
    season = 1.0 + _BILL_SEASONAL[:, None] * np.cos(2 * np.pi * np.arange(12) / 12)[None, :]
    amount = _lognormal(rng, pair_mu[owner], 0.15) * season.astype(np.float32)[kind, month % 12]
    draw = rng.random(r, dtype=np.float32)
    days_late = np.zeros(r, dtype=np.int64)
    very = np.flatnonzero(draw < p_very[user])
    days_late[very] = 30 + rng.integers(0, 60, len(very))
    late = np.flatnonzero((draw >= p_very[user]) & (draw < p_late[user]))
    days = 1 + np.floor(np.log(rng.random(len(late), dtype=np.float32)) * inv_log_q[user[late]])
    days_late[late] = np.minimum(days, 25)
    return {
        "user_id": user,
        "month": _month_start(month),
        "kind": _labels(BILL_KIND, kind),
        "amount": np.maximum(_money(amount), 0.01),
        "days_late": days_late,
    }


def _balances(rng: np.random.Generator, p: _People) -> dict[str, np.ndarray]:
    n = p.n
    level = np.log(600.0) + 0.7 * p.wealth + rng.normal(0.0, 0.8, n)
    trend = 0.15 * p.latent + rng.normal(0.0, 0.3, n)  # bad payers drain their accounts
    base = np.minimum(rng.poisson(np.exp(-0.5 + 0.35 * p.wealth + 0.2 * p.latent)), 4)
    change_at = rng.integers(0, 12, n)  # months before observation when products change
    delta = np.where(rng.random(n) < 0.2, rng.choice([-1, 1], n), 0)
    owner, month, back = _history_months(p, np.arange(n))
    log_balance = level[owner] - trend[owner] * back / 12
    log_balance += 0.35 * rng.standard_normal(len(owner), dtype=np.float32)
    products = np.clip(base[owner] + np.where(back <= change_at[owner], delta[owner], 0), 0, 4)
    return {
        "user_id": owner,
        "month": _month_start(month),
        "balance": _money(np.exp(log_balance)),
        "products": products,
    }


def _public_records(rng: np.random.Generator, p: _People) -> dict[str, object]:
    """Court judgments, enforcement listings, tax arrears and bankruptcies, filed in the 7
    years before the observation date: rare (~5 per 100 users), more frequent, more recent
    and less often satisfied the lower the user's latent credit; a few dismissed (at random).
    Fraud rings' fresh identities have none. Rows by user, then filing date."""
    bad = -p.latent.astype(np.float64)
    weight = np.exp(1.3 * bad)
    weight[p.in_ring] = 0.0
    count = rng.poisson(weight * (_RECORDS_PER_USER * p.n / weight.sum()))
    user = np.repeat(np.arange(p.n, dtype=np.int64), count)
    r = len(user)
    kind = rng.choice(len(RECORD_KIND), r, p=_RECORD_P)
    # Lasting distress: a lower latent draws the filing nearer the observation date.
    back = np.floor(_RECORD_DAYS * rng.random(r) ** np.exp(0.5 * bad[user])).astype(np.int32)
    filed = p.obs[user] - 1 - back
    amount = _lognormal(rng, (_RECORD_MU[kind] + 0.3 * p.wealth[user]).astype(np.float32), 0.8)
    dismissed = rng.random(r) < 0.08
    years = (back + 1) / 365.0
    paid = rng.random(r) < _sigmoid(-0.8 + 1.2 * p.latent[user] + 0.5 * years)
    status = np.where(dismissed, 2, np.where(paid, 1, 0))  # index into RECORD_STATUS
    satisfied = status == RECORD_STATUS.index("satisfied")
    settled = filed + 1 + np.floor(rng.random(r) * (back + 1)).astype(np.int32)  # <= obs
    order = np.lexsort((filed, user))
    user, kind, filed, status = user[order], kind[order], filed[order], status[order]
    amount, satisfied, settled = amount[order], satisfied[order], settled[order]
    return {
        "user_id": user,
        "record_id": _codes("r", r),
        "kind": _labels(RECORD_KIND, kind),
        "filed_date": filed,
        "amount": np.maximum(_money(amount), 1.0),
        "status": _labels(RECORD_STATUS, status),
        "satisfied_date": pa.array(settled, mask=~satisfied, type=pa.int32()).cast(pa.date32()),
        "source": _labels(_RECORD_SOURCE, kind),
    }


def _repayment_norms(rng: np.random.Generator, p: _People) -> np.ndarray:
    """Each user's community repayment norm: a default log-odds shift shared by the
    community (standard deviation ``_NORM_SD`` over users) that no earlier behaviour shows.
    Drawn after every behaviour table, so only defaults depend on it."""
    effect = rng.standard_normal(int(p.community.max()) + 1)
    return _over_users(effect, p.community, _NORM_SD)[p.community].astype(np.float32)


def _defaults(rng: np.random.Generator, p: _People, norm: np.ndarray) -> np.ndarray:
    """Default within 12 months: PD = logistic(a - slope * latent + norm), ``a`` tuned by
    bisection for the target rate; a fraud ring busts out as a whole (members default
    together)."""
    z = -_DEFAULT_SLOPE * p.latent.astype(np.float64) + norm
    # Rings: 85% of rings (a fixed count, random which) bust out and each of their members
    # defaults w.p. 0.9, others w.p. 0.25: ~0.8 on average, correlated within a ring.
    bust = np.zeros(p.n_rings, dtype=bool)
    bust[rng.permutation(p.n_rings)[: int(np.ceil(0.85 * p.n_rings))]] = True
    ring_pd = np.where(bust, 0.9, 0.25)[p.ring[p.in_ring]]
    lo, hi = -12.0, 6.0
    for _ in range(40):  # bisection on the intercept (iterations, not users)
        mid = (lo + hi) / 2
        pd_ = _sigmoid(mid + z)
        pd_[p.in_ring] = ring_pd
        lo, hi = (lo, mid) if pd_.mean() > _TARGET_DEFAULT_RATE else (mid, hi)
    pd_ = _sigmoid((lo + hi) / 2 + z)
    pd_[p.in_ring] = ring_pd
    return rng.random(p.n) < pd_


# --------------------------------------------------------------------------- output


def _arrow(columns: tuple[tuple[str, str], ...], data: dict[str, object]) -> pa.Table:
    arrays = []
    for name, kind in columns:
        v = data[name]
        if isinstance(v, pa.Array):
            arrays.append(v)
        elif kind == "date":
            arrays.append(pa.array(np.asarray(v, dtype=np.int32)).cast(pa.date32()))
        elif kind == "str":
            arrays.append(pa.array(np.asarray(v), type=pa.string()))
        else:
            dtype = {"int": np.int64, "float": np.float64, "bool": np.bool_}[kind]
            arrays.append(pa.array(np.asarray(v, dtype=dtype), type=_ARROW_TYPES[kind]))
    return pa.Table.from_arrays(arrays, names=[name for name, _ in columns])


def _write(table: pa.Table, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        pq.write_table(table, path)
        return
    with path.open("wb") as fh:  # header written by hand: pyarrow would quote it
        fh.write((",".join(table.column_names) + "\n").encode())
        # Ids, cities and categories never contain commas or quotes: no quoting needed.
        opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
        pacsv.write_csv(table, fh, opts)


def _columns(name: str) -> tuple[tuple[str, str], ...]:
    if name == "truth":
        return WORLD_TRUTH_COLUMNS
    # Personal identifiers are optional in the schema; the synthetic world has none.
    return tuple((c.name, c.kind) for c in SCHEMAS[name].columns if not c.personal)


def generate_world(
    n_users: int, *, seed: int = 42, out_dir: Path | None = None, fmt: str = "csv"
) -> dict[str, pd.DataFrame]:
    """Generate the world; if out_dir is given also write one file per table
    (<name>.csv or <name>.parquet) there. Returns the tables by name.

    Tables follow :data:`ingest.schemas.SCHEMAS` column for column (dates as
    ``datetime64``, ids as strings), plus ``truth`` (:data:`WORLD_TRUTH_COLUMNS`).
    """
    if fmt not in ("csv", "parquet"):
        raise InvalidArgument(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    if n_users < 200:
        raise InvalidArgument(
            f"a synthetic world needs at least 200 users, not {n_users:,} "
            "(communities of 20+, 3+ fraud rings)"
        )
    rng = np.random.default_rng(seed)
    p = _people(rng, n_users)
    mer = _merchants(rng, p)
    _finish_people(rng, p)
    uid = _codes("u", p.n)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
    tables: dict[str, pd.DataFrame] = {}

    def emit(name: str, data: dict[str, Any], user_cols: tuple[str, ...] = ()) -> None:
        """Ids from indices, then Arrow table -> file -> DataFrame; one table at a time
        so the numpy intermediates of a table are freed before the next is built."""
        for column in user_cols:
            data[column] = _take(uid, data[column])
        table = _arrow(_columns(name), data)
        data.clear()
        if out_dir is not None:
            _write(table, out_dir / f"{name}.{fmt}", fmt)
        tables[name] = table.to_pandas(date_as_object=False)

    emit("users", {
        "user_id": uid,
        "signup_date": p.signup,
        "age": p.age,
        "city": _labels(CITIES, p.city),
        "phone_tenure_months": p.phone_tenure,
        "address_tenure_months": p.address_tenure,
        "real_name_verified": p.verified,
        "education": _labels(EDUCATION, p.education),
        "occupation": _labels(OCCUPATION, p.occupation),
    })  # fmt: skip
    mid = _codes("m", len(mer["owner"]))
    emit("merchants", {
        "merchant_id": mid,
        "owner_id": mer["owner"],
        "category": _labels(MERCHANT_CATEGORY, mer["category"]),
        "city": _labels(CITIES, mer["city"]),
        "opened_date": mer["opened"],
    }, ("owner_id",))  # fmt: skip
    fr = _friendships(rng, p)
    transfers = _transfers(rng, p, fr)
    transfers["transfer_id"] = _codes("t", len(transfers["src"]))  # no draws: world unchanged
    emit("transfers", transfers, ("src", "dst"))
    emit("devices", _devices(rng, p, fr, seed % (1 << 40)), ("user_id",))
    emit("friendships", fr, ("src", "dst"))
    pay = _payments(rng, p, mer)
    pay["merchant_id"] = _take(mid, pay["merchant_id"])
    pay["payment_id"] = _codes("p", len(pay["user_id"]))
    emit("payments", pay, ("user_id",))
    rep = _repayments(rng, p)
    thin_file = np.bincount(rep["user_id"], minlength=p.n) == 0  # actual: no instalments
    emit("repayments", rep, ("user_id",))
    emit("bills", _bills(rng, p), ("user_id",))
    emit("balances", _balances(rng, p), ("user_id",))
    norm = _repayment_norms(rng, p)
    defaulted = _defaults(rng, p, norm)
    owned_tier = np.full(p.n, -1, dtype=np.int8)
    owned_tier[mer["owner"]] = mer["tier"]
    emit("labels", {"user_id": uid, "observation_date": p.obs, "defaulted": defaulted})
    # Drawn last, so every other table is the world it was before public records existed.
    emit("public_records", _public_records(rng, p), ("user_id",))
    emit("truth", {
        "user_id": uid,
        "latent_credit": np.round(p.latent.astype(np.float64), 4),
        "community": p.community,
        "default_norm": np.round(norm.astype(np.float64), 4),
        "ring_id": p.ring,
        "thin_file": thin_file,
        "credit_tier": p.tier,
        "owned_merchant_tier": owned_tier,
    })  # fmt: skip
    return {name: tables[name] for name in (*SCHEMAS, "truth")}
