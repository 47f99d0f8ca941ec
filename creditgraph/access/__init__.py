"""Authorized score access for partners: grants, scoped answers, a hash-chained audit log.
See the project README, "Partner access" (personal data at rest: :mod:`creditgraph.ingest.pii`)."""

from creditgraph.access.audit import AuditEntry, AuditReport, verify_audit
from creditgraph.access.policy import Policies, PolicyRefused, PurposePolicy, load_policies
from creditgraph.access.registry import (
    add_partner,
    issue_subject_token,
    list_partners,
    revoke_partner,
    revoke_subject_token,
    revoke_subject_tokens,
    rotate_partner_key,
)
from creditgraph.access.scopes import Scope
from creditgraph.access.scores import (
    ParquetScoreSource,
    ScoreRecord,
    ScoreSource,
    StoreScoreSource,
)

__all__ = [
    "AuditEntry",
    "AuditReport",
    "ParquetScoreSource",
    "Policies",
    "PolicyRefused",
    "PurposePolicy",
    "Scope",
    "ScoreRecord",
    "ScoreSource",
    "StoreScoreSource",
    "add_partner",
    "issue_subject_token",
    "list_partners",
    "load_policies",
    "revoke_partner",
    "revoke_subject_token",
    "revoke_subject_tokens",
    "rotate_partner_key",
    "verify_audit",
]
