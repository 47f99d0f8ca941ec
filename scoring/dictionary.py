"""The feature dictionary: every model feature's factor, known direction and plain words.

This is the one declared place for every column the feature families
(:mod:`scoring.features`) compute: :data:`FEATURES` holds the model inputs with
their factor, :data:`AUXILIARY` the columns computed alongside that are never a
model input. ``train_model`` refuses a column declared in neither
(:func:`model_features`), and ``tests/test_feature_dictionary.py`` fails when a
computed column is undeclared or a declared one is never computed. ``risk`` is
the monotone direction on the probability of default: +1 means more of the
feature never lowers PD (never raises the score), -1 the reverse, 0 unknown.
A feature without a direction can lower the score from either side, so its
words name what was looked at ("Number of credit accounts"), never a claim
("Few credit accounts") the user's own value may contradict.

A reason says what the user's data shows. ``words`` describe a value the user
has. Where the value is missing (no repayment rows, no bills, no friends…) the
reason is the feature's ``missing_words``, a "no record" statement, or none at
all when it has none: never a claim about behaviour. Features that share a
wording make one reason together, their points summed (see :func:`reason_words`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from creditgraph.errors import UnknownFeature

FACTORS = ("credit_history", "behaviour", "capacity", "characteristics", "relationships")
FACTOR_TITLES = {
    "credit_history": "Credit history",
    "behaviour": "Behaviour & preference",
    "capacity": "Fulfilment capacity",
    "characteristics": "Personal characteristics",
    "relationships": "Interpersonal relationships",
}


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    factor: str
    risk: int  # monotone direction on PD: +1, -1 or 0
    words: str  # said when this feature's value lowers the score ("": never a reason)
    missing_words: str | None = None  # said instead when the value is missing; None: no reason
    absent_value: float | None = None  # a value that itself means "no record" (thin_file = 1)


def _specs(factor: str, rows: list[tuple[str, int, str]]) -> list[FeatureSpec]:
    return [FeatureSpec(name, factor, risk, words) for name, risk, words in rows]


# "No record" wordings, and the features a missing record leaves empty (NaN). A missing
# feature not listed here gives no reason: NaN months_since_delinquency means never
# delinquent (or no history), NaN owned_* means owning no business, and so on.
NO_REPAYMENTS = "No loan or card repayment history yet"
NO_BILLS = "No utility bill history yet"
NO_BALANCES = "No account balance history yet"
FEW_FRIENDS = "Few friends on the platform"
FEW_KNOWN_FRIENDS = "Few friends with a known track record"
FRIENDS_NO_REPAYMENTS = "Few friends with a repayment history"
FRIENDS_NO_HISTORY = "Few friends with a history on the platform"
MISSING_WORDS: dict[str, tuple[str, ...]] = {
    NO_REPAYMENTS: (
        "thin_file", "accounts", "credit_months", "on_time_share", "max_days_late",
        "late_30_count", "late_90_count", "shortfall_ratio",
    ),
    NO_BILLS: ("bill_late_share", "bill_mean_days_late", "bill_kinds"),
    NO_BALANCES: ("balance_mean", "balance_min", "balance_trend", "products_held"),
    # NaN with no friends (clustering: with fewer than two).
    FEW_FRIENDS: (
        "interaction_strength", "reciprocity", "tie_age_days", "clustering",
        "friends_thin_file_share", "friends_past_default_share", "new_friends_share",
    ),
    FEW_KNOWN_FRIENDS: ("neighbour_default_share", "hop2_default_share"),
    # NaN when no friend has the record the mean is taken over.
    FRIENDS_NO_REPAYMENTS: (
        "friends_mean_on_time_share", "friends_mean_max_days_late",
        "friends_mean_shortfall_ratio",
    ),
    FRIENDS_NO_HISTORY: (
        "friends_mean_bill_late_share", "friends_mean_balance_mean",
        "friends_mean_products_held", "friends_mean_account_age_days",
        "friends_mean_real_name_verified",
    ),
}  # fmt: skip
ABSENT_VALUES = {"thin_file": 1.0}  # thin_file = 1 is itself "no repayment record"


_SPECS: list[FeatureSpec] = [  # each name once (tests/test_feature_dictionary.py)
    *_specs(
        "credit_history",
        [
            ("thin_file", 0, ""),  # a reason only as "no record" (= 1)
            ("accounts", 0, "Number of credit accounts"),
            ("credit_months", -1, "Short credit history"),
            ("on_time_share", -1, "Instalments not paid on time"),
            ("max_days_late", 1, "A repayment was very late"),
            ("late_30_count", 1, "Repayments 30+ days late"),
            ("late_90_count", 1, "Repayments 90+ days late"),
            ("shortfall_ratio", 1, "Instalments not paid in full"),
            ("months_since_delinquency", -1, "A recent delinquency"),
            # Public records (scoring.features.public_records): no record is 0 open, 0
            # owed, share 1 (nothing unpaid), so those values never make a reason; NaN
            # months since the latest record means none, no reason either.
            ("open_court_judgments", 1, "An unpaid court judgment"),
            ("open_enforcement_listings", 1, "On a court enforcement list for an unpaid debt"),
            ("open_tax_arrears", 1, "Unpaid tax arrears"),
            ("open_bankruptcies", 1, "A bankruptcy not yet discharged"),
            ("public_record_amount_outstanding", 1, "Money still owed on public records"),
            ("months_since_public_record", -1, "A court, tax or bankruptcy record on file"),
            ("public_record_satisfied_share", -1, "Public records left unpaid"),
        ],
    ),
    *_specs(
        "behaviour",
        [
            ("payment_count", 0, "Number of payments to merchants"),
            ("payment_amount", 0, "Amount spent with merchants"),
            ("merchant_diversity", 0, "How payments spread over merchants"),
            ("bill_late_share", 1, "Utility bills paid late"),
            ("bill_mean_days_late", 1, "Utility bills paid late on average"),
            ("bill_kinds", -1, "Few utility accounts in own name"),
        ],
    ),
    *_specs(
        "capacity",
        [
            ("balance_mean", -1, "Low average balance"),
            ("balance_min", -1, "Balance ran low"),
            ("balance_trend", -1, "Balance has been falling"),
            ("products_held", -1, "Few financial products held"),
        ],
    ),
    *_specs(
        "characteristics",
        [
            ("age", 0, "Age group"),
            ("account_age_days", -1, "Recently opened account"),
            ("phone_tenure_months", -1, "Short time on current phone number"),
            ("address_tenure_months", -1, "Short time at current address"),
            ("real_name_verified", -1, "Identity not verified"),
            ("education_level", 0, "Education level"),
            ("occupation", 0, "Occupation"),
        ],
    ),
    *_specs(
        "relationships",
        [
            ("friend_count", 0, "Number of friends on the platform"),
            ("interaction_strength", 0, "Interaction with friends"),
            ("reciprocity", -1, "Friendships are one-sided"),
            ("tie_age_days", -1, "Friendships are recent"),
            ("transfer_out_amount", 0, "Money sent to others"),
            ("transfer_in_amount", 0, "Money received from others"),
            ("transfer_counterparties", 0, "Number of people transferred with"),
            ("pagerank_scaled", 0, "Position in the network"),
            ("component_size", 0, "Size of the connected friend group"),
            ("clustering", 0, "How closely knit the friend group is"),
            ("coreness", 0, "How embedded in the network"),
            ("friends_mean_on_time_share", -1, "Friends often repay late"),
            ("friends_mean_max_days_late", 1, "Friends have had very late repayments"),
            ("friends_mean_shortfall_ratio", 1, "Friends often underpay instalments"),
            ("friends_mean_bill_late_share", 1, "Friends often pay bills late"),
            ("friends_mean_balance_mean", -1, "Friends keep low balances"),
            ("friends_mean_products_held", -1, "Friends hold few financial products"),
            ("friends_mean_account_age_days", -1, "Friends' accounts are new"),
            ("friends_mean_real_name_verified", -1, "Many friends are unverified"),
            ("friends_thin_file_share", 0, "Share of friends with no credit history"),
            ("friends_past_default_share", 1, "Friends have defaulted before"),
            ("friends_prev_score_mean", -1, "Friends' own credit scores are low"),
            ("friends_prev_score_min", -1, "A friend has a very low credit score"),
            ("community_size", 0, "Size of community"),
            ("community_density", 0, "Density of community"),
            ("shared_device_users", 0, "Sharing of devices with other accounts"),
            ("new_friends_share", 0, "Share of friends with new accounts"),
            ("new_account_triangles", 0, "New accounts among close friends"),
            ("reciprocal_transfer_partners", 0, "Transfers back and forth with others"),
            ("merchant_customer_on_time_share", -1, "Shops where customers often repay late"),
            ("owned_customer_count", 0, "Number of customers of own business"),
            ("owned_customer_on_time_share", -1, "Own business's customers often repay late"),
            # Label-aware (exposure): own fold's label set in training, the K sets' mean otherwise.
            ("known_neighbours", 0, "Number of friends with a known track record"),
            ("neighbour_default_share", 1, "Friends have defaulted"),
            ("hop2_default_share", 1, "Friends of friends have defaulted"),
            ("default_ppr", 1, "Close in the network to people who defaulted"),
            ("trust_ppr", -1, "Far in the network from reliable payers"),
            ("community_default_rate", 1, "Community with many defaults"),
            ("merchant_customer_default_rate", 1, "Shops whose customers often default"),
            ("owned_customer_default_rate", 1, "Own business's customers often default"),
        ],
    ),
]
_DECLARED = {spec.name: spec for spec in _SPECS}
_MISSING_OF = {name: words for words, names in MISSING_WORDS.items() for name in names}
FEATURES: dict[str, FeatureSpec] = {
    name: replace(
        declared, missing_words=_MISSING_OF.get(name), absent_value=ABSENT_VALUES.get(name)
    )
    for name, declared in _DECLARED.items()
}
# Computed with the features (kept in features/ and the scored inputs) but never a
# model input; train_model leaves them out.
AUXILIARY: dict[str, str] = {
    "community": "community id, an identifier (read by the exposure family, written with "
    "the scores)",
    "past_default": "1 when any instalment was 90+ days late (read by friends' features; "
    "late_90_count is the model's)",
}


def model_features(columns: Iterable[str]) -> list[str]:
    """The model inputs among ``columns``, in their order.

    Declared auxiliary columns are left out; a column declared nowhere raises
    :class:`~creditgraph.errors.UnknownFeature` instead of being dropped
    silently: a new column must be declared before a model can use it.
    """
    columns = list(columns)
    unknown = [c for c in columns if c not in FEATURES and c not in AUXILIARY]
    if unknown:
        raise UnknownFeature(
            f"column(s) {', '.join(map(repr, unknown))} not declared in scoring.dictionary: "
            "add each to FEATURES (a model input) or AUXILIARY (never a model input)"
        )
    return [c for c in columns if c in FEATURES]


@contextmanager
def declared(*extra: FeatureSpec) -> Iterator[None]:
    """Declare ``extra`` features for the length of a ``with`` block, then forget them.

    For experiments that add their own columns (``benchmarks/model_quality.py``'s
    oracles): models trained inside the block can use them. A name already
    declared is refused.
    """
    taken = [f.name for f in extra if f.name in FEATURES or f.name in AUXILIARY]
    if taken:
        raise ValueError(f"already declared: {', '.join(taken)}")
    FEATURES.update({f.name: f for f in extra})
    try:
        yield
    finally:
        for f in extra:
            FEATURES.pop(f.name, None)


def spec(name: str) -> FeatureSpec:
    """The declared spec of ``name``; an undeclared feature is an error, not a guess."""
    try:
        return FEATURES[name]
    except KeyError:
        raise UnknownFeature(
            f"feature {name!r} is not in scoring.dictionary.FEATURES (a model saved by another "
            "version? train again)"
        ) from None


def reason_words(features: list[str]) -> tuple[list[str], list[int], list[int]]:
    """The distinct reasons of ``features``, and where each feature's points go.

    Returns ``(reasons, value_slot, missing_slot)``: a feature's points count
    towards ``reasons[value_slot[i]]`` when it has a value and towards
    ``reasons[missing_slot[i]]`` when it is missing; slot -1 means no reason.
    Identical wordings share one slot, so one user never hears the same reason twice.
    """
    reasons: list[str] = []
    slots: dict[str, int] = {}

    def slot(words: str | None) -> int:
        if not words:
            return -1
        if words not in slots:
            slots[words] = len(reasons)
            reasons.append(words)
        return slots[words]

    value_slot = [slot(spec(f).words) for f in features]
    missing_slot = [slot(spec(f).missing_words) for f in features]
    return reasons, value_slot, missing_slot
