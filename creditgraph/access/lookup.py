"""A partner's lookup: policy and grant check, disclosure by scope and audit append, in one
transaction."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from creditgraph.access import audit
from creditgraph.access.db import AccessDB
from creditgraph.access.errors import Refused
from creditgraph.access.grants import match_grant, spend
from creditgraph.access.policy import Policies, PolicyRefused, default_policies
from creditgraph.access.scopes import DISCLOSED, Scope, disclose
from creditgraph.access.scores import ScoreRecord, ScoreSource
from creditgraph.errors import InvalidArgument
from creditgraph.scoring.scale import ScoreScale

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """What a granted lookup discloses; ``fields`` is what the audit entry records."""

    scope: Scope
    purpose: str
    fields: tuple[str, ...]
    answer: dict[str, Any]
    audit_seq: int


def lookup(
    db: AccessDB,
    scores: ScoreSource,
    *,
    partner_id: str,
    subject_id: str,
    purpose: str,
    scope: Scope | str,
    threshold: int | None = None,
    policies: Policies | None = None,
    scale: ScoreScale | None = None,
) -> Answer:
    """Answer one lookup or raise :class:`Refused`; either way one audit entry is appended.

    The purpose's policy (``policies``, default: the shipped ones) is checked first, from
    the purpose and scope alone: asking more raises
    :class:`~creditgraph.access.policy.PolicyRefused`. After that, the refusal path is the
    same whether the subject is unknown or simply gave no grant: the score source is
    consulted only after a grant matched. Bands and the policy's cut-off are read on the
    scale of the run the score comes from (:attr:`ScoreRecord.scale`); ``scale`` stands in
    for a source that cannot tell (default: 350-950). The purpose's cut-off, or the one
    the answer is at (the threshold asked, or a decision's grant's), outside that scale's
    range refuses the lookup (``threshold_outside_scale``), audited, before the grant is
    spent or its cut-off fixed.
    """
    scope = Scope(scope)
    if (threshold is None) == (scope is Scope.THRESHOLD):
        raise InvalidArgument("give a threshold exactly when the scope is 'threshold'")

    def refusal(conn: sqlite3.Connection, now: datetime, reason: str) -> None:
        audit.append(conn, now, "lookup", "refused", partner_id=partner_id,
                     subject_id=subject_id, purpose=purpose, scope=scope.value,
                     reason=reason)  # fmt: skip

    try:
        policy = (policies or default_policies()).check_lookup(purpose, scope)
    except PolicyRefused as refused:
        reason = refused.reason  # the same for every subject: said to the partner, audited
        db.submit(lambda conn: refusal(conn, db.now(), reason))
        raise

    # Fetch the score before joining the group commit, so a slow source (a graph store)
    # does not hold up other lookups; only when a grant matches, so the refusal path
    # never touches the subject's data. The commit re-checks the grant authoritatively.
    prefetched: ScoreRecord | Refused | None = None
    with db.reading() as conn:
        try:
            match_grant(
                conn,
                db.now(),
                partner_id=partner_id,
                subject_id=subject_id,
                purpose=purpose,
                scope=scope,
                threshold=threshold,
                policy=policy,
            )
        except Refused:
            pass
        else:
            prefetched = _fetch(scores, subject_id)

    def decide(conn: sqlite3.Connection) -> Answer | Refused:
        now = db.now()
        try:
            grant = match_grant(
                conn,
                now,
                partner_id=partner_id,
                subject_id=subject_id,
                purpose=purpose,
                scope=scope,
                threshold=threshold,
                policy=policy,
            )
            record = prefetched if prefetched is not None else _fetch(scores, subject_id)
            if isinstance(record, Refused):
                raise record
            served = record.scale or scale or ScoreScale()  # the points its model scored on
            # The one cut-off answered at: the one asked (equal to the grant's, if it has
            # one), or for a decision the grant's, else the policy's; a first answer fixes it.
            cutoff = policy.cutoff(grant.threshold) if scope is Scope.DECISION else threshold
            policy.check_scale(served, cutoff)
        except Refused as refused:
            refusal(conn, now, refused.reason)
            return refused
        spend(conn, grant, cutoff)
        fields = DISCLOSED[scope]
        seq = audit.append(
            conn,
            now,
            "lookup",
            "granted",
            partner_id=partner_id,
            subject_id=subject_id,
            purpose=purpose,
            scope=scope.value,
            fields=fields,
            grant_id=grant.grant_id,
        )
        answer = disclose(record, scope, cutoff, decision=policy.decision, scale=served)
        return Answer(scope, purpose, fields, answer, seq)

    outcome = db.submit(decide)  # returns once the audit entry is durable
    if isinstance(outcome, Refused):
        raise outcome
    return outcome


def _fetch(scores: ScoreSource, subject_id: str) -> ScoreRecord | Refused:
    try:
        record = scores.get(subject_id)
    except Exception as exc:  # a store outage is still a refused, audited attempt
        _log.warning("score source failed: %s", type(exc).__name__)  # no subject id here
        return Refused("score_unavailable")
    return record if record is not None else Refused("no_score")
