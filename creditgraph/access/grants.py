"""Subject grants: one partner, one purpose, one scope, an expiry and optional use limit.

Every grant, whatever its scope, answers "is the score at least T?" for a single T: the
subject may fix it when granting, otherwise the partner's first threshold question fixes
it. Without this, a partner could binary-search the exact score with nine or ten threshold
questions (within the band, under a ``band`` grant). A grant whose purpose is a yes/no
decision in the policies (:mod:`creditgraph.access.policy`) holds the policy's cut-off
from the start, unless the subject fixes a higher one.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from creditgraph.access import audit, tokens
from creditgraph.access.db import AccessDB, from_text, to_text
from creditgraph.access.errors import Refused, UnknownPartner
from creditgraph.access.policy import MAX_DAYS, PURPOSE, Policies, PurposePolicy, default_policies
from creditgraph.access.scopes import Scope
from creditgraph.errors import InvalidArgument
from creditgraph.scoring.scale import ScoreScale

MAX_GRANT_LIFETIME = timedelta(days=MAX_DAYS)

# What a grant is now (``GET /v1/grants``); every status but ``active`` is also the reason
# a lookup with it is refused (audit log).
GrantStatus = Literal["active", "revoked", "expired", "expired_by_policy", "used_up"]

# Why a grant does not answer a request, most telling first (for the audit log).
_REASON_ORDER = (
    "threshold_mismatch", "scope_too_narrow", "used_up", "expired", "expired_by_policy",
    "revoked", "purpose_mismatch", "no_grant",
)  # fmt: skip


@dataclass(frozen=True)
class Grant:
    """A subject's consent for one partner to look their score up for one purpose."""

    grant_id: str
    subject_id: str
    partner_id: str
    purpose: str
    scope: Scope
    created_at: datetime
    expires_at: datetime
    max_uses: int | None = None
    uses: int = 0
    threshold: int | None = None
    revoked_at: datetime | None = None

    def lapses_at(self, policy: PurposePolicy | None) -> datetime:
        """When the grant stops answering: its own expiry, or earlier if ``policy`` (its
        purpose's, as it is now) allows a shorter life than when the grant was made."""
        if policy is None:
            return self.expires_at
        return min(self.expires_at, policy.lapses_at(self.created_at))

    def status(self, now: datetime, policy: PurposePolicy | None = None) -> GrantStatus:
        """``active``, ``revoked``, ``expired``, ``expired_by_policy`` or ``used_up``.

        ``policy``: the grant's purpose's policy as it is now (None: no policy applies, or
        the purpose is refused as a whole). A grant past :meth:`lapses_at` is
        ``expired_by_policy`` when the policy ended it before its own expiry, else
        ``expired`` (and stays so once its own expiry passes too). Listing and matching
        both ask this, so the status a subject is shown is the one a lookup acts on.
        """
        if self.revoked_at is not None:
            return "revoked"
        lapses = self.lapses_at(policy)
        if now >= lapses:
            return "expired" if lapses == self.expires_at else "expired_by_policy"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "used_up"
        return "active"


def _grant(row: sqlite3.Row) -> Grant:
    return Grant(
        grant_id=row["grant_id"], subject_id=row["subject_id"], partner_id=row["partner_id"],
        purpose=row["purpose"], scope=Scope(row["scope"]),
        created_at=from_text(row["created_at"]), expires_at=from_text(row["expires_at"]),
        max_uses=row["max_uses"], uses=row["uses"], threshold=row["threshold"],
        revoked_at=from_text(row["revoked_at"]) if row["revoked_at"] else None,
    )  # fmt: skip


def create_grant(
    db: AccessDB,
    *,
    subject_id: str,
    partner_id: str,
    purpose: str,
    scope: Scope | str,
    expires_at: datetime,
    max_uses: int | None = None,
    threshold: int | None = None,
    policies: Policies | None = None,
    scale: ScoreScale | None = None,
) -> Grant:
    """Record a subject's grant; raises :class:`InvalidArgument` (a ``ValueError``) naming it.

    The grant is checked against its purpose's policy (``policies``, default: the shipped
    ones): asking more raises :class:`~creditgraph.access.policy.PolicyRefused` with the
    reason. A yes/no purpose's grant is stored with its cut-off. ``scale``: the scale of the
    run served now; the grant's cut-off must lie in its range (None: no run to check
    against, any cut-off 0-2000; lookups still check theirs).
    """
    scope = Scope(scope)
    now = db.now()
    # The messages never repeat the values given: the API passes them on to the caller.
    if not PURPOSE.match(purpose):
        raise InvalidArgument("purpose must be snake_case, e.g. 'hotel_deposit'")
    if expires_at.tzinfo is None:
        raise InvalidArgument("expires_at needs a timezone")
    if not now < expires_at <= now + MAX_GRANT_LIFETIME:
        raise InvalidArgument("expires_at must be in the future and at most 366 days away")
    if max_uses is not None and max_uses < 1:
        raise InvalidArgument("max_uses must be at least 1")
    if threshold is not None and not 0 <= threshold <= 2000:
        raise InvalidArgument("threshold must be between 0 and 2000")
    threshold = (policies or default_policies()).check_grant(
        purpose, scope, created_at=now, expires_at=expires_at, threshold=threshold, scale=scale
    )
    grant = Grant(
        tokens.new_id(),
        subject_id,
        partner_id,
        purpose,
        scope,
        now,
        expires_at,
        max_uses,
        0,
        threshold,
    )
    with db.transaction() as conn:
        partner = conn.execute(
            "SELECT 1 FROM partners WHERE partner_id = ? AND revoked_at IS NULL", (partner_id,)
        ).fetchone()
        if partner is None:
            raise UnknownPartner(f"no active partner with id {partner_id!r}")
        conn.execute(
            "INSERT INTO grants (grant_id, subject_id, partner_id, purpose, scope, threshold, "
            "created_at, expires_at, max_uses) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                grant.grant_id,
                subject_id,
                partner_id,
                purpose,
                scope.value,
                threshold,
                to_text(now),
                to_text(expires_at),
                max_uses,
            ),
        )
        audit.append(
            conn,
            now,
            "grant_created",
            "ok",
            partner_id=partner_id,
            subject_id=subject_id,
            purpose=purpose,
            scope=scope.value,
            grant_id=grant.grant_id,
        )
    return grant


def list_grants(db: AccessDB, subject_id: str) -> list[Grant]:
    """A subject's grants, newest first, whatever their status."""
    with db.reading() as conn:
        rows = conn.execute(
            "SELECT * FROM grants WHERE subject_id = ? ORDER BY created_at DESC, grant_id",
            (subject_id,),
        ).fetchall()
    return [_grant(row) for row in rows]


def revoke_grant(db: AccessDB, subject_id: str, grant_id: str) -> bool:
    """Revoke one of the subject's own grants; False if they have no grant with that id."""
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT * FROM grants WHERE grant_id = ? AND subject_id = ?", (grant_id, subject_id)
        ).fetchone()
        if row is None:
            return False
        if row["revoked_at"] is None:
            now = db.now()
            conn.execute(
                "UPDATE grants SET revoked_at = ? WHERE grant_id = ?", (to_text(now), grant_id)
            )
            audit.append(
                conn,
                now,
                "grant_revoked",
                "ok",
                partner_id=row["partner_id"],
                subject_id=subject_id,
                purpose=row["purpose"],
                scope=row["scope"],
                grant_id=grant_id,
            )
        return True


def match_grant(
    conn: sqlite3.Connection,
    now: datetime,
    *,
    partner_id: str,
    subject_id: str,
    purpose: str,
    scope: Scope,
    threshold: int | None,
    policy: PurposePolicy | None = None,
) -> Grant:
    """The active grant that answers this request, or :class:`Refused` with the cause.

    Among several, the narrowest scope wins, then the soonest expiry, so a broad grant's
    uses are spent last. ``policy`` (the purpose's, already checked against the request)
    adds its cut-off to grants without one, and its longest duration to every grant
    (:meth:`Grant.status`; the expiry compared is :meth:`Grant.lapses_at`, when each
    really stops answering). Run inside the lookup's write transaction.
    """
    rows = conn.execute(
        "SELECT * FROM grants WHERE partner_id = ? AND subject_id = ?",
        (partner_id, subject_id),
    ).fetchall()
    reasons: set[str] = set()
    usable: list[Grant] = []
    for grant in map(_grant, rows):
        if grant.purpose != purpose:
            reasons.add("purpose_mismatch")
            continue
        status = grant.status(now, policy)  # expired_by_policy: tightened after the grant
        cutoff = policy.cutoff(grant.threshold) if policy else grant.threshold
        if status != "active":
            reasons.add(status)
        elif not grant.scope.covers(scope):
            reasons.add("scope_too_narrow")
        elif scope is Scope.THRESHOLD and cutoff not in (None, threshold):
            reasons.add("threshold_mismatch")  # whatever the grant's scope
        else:
            usable.append(grant)
    if not usable:
        raise Refused(next((r for r in _REASON_ORDER if r in reasons), "no_grant"))
    return min(usable, key=lambda g: (g.scope.rank, g.lapses_at(policy), g.grant_id))


def spend(conn: sqlite3.Connection, grant: Grant, threshold: int | None) -> None:
    """Count one answered lookup against the grant; a first threshold question fixes its cut-off.

    ``threshold`` is the cut-off answered at (None for band, score and full questions).
    """
    pin = threshold is not None and grant.threshold is None
    conn.execute(
        "UPDATE grants SET uses = uses + 1, threshold = CASE WHEN ? THEN ? ELSE threshold END "
        "WHERE grant_id = ?",
        (pin, threshold, grant.grant_id),
    )
