"""Partner scenarios as policies: per purpose, the widest scope, the longest grant, the decision.

The operator declares them in a TOML file (the shipped default is ``policies.toml`` next to
this module; ``Settings.policies`` names another). Grants asking more than their purpose
allows are refused with the reason (:class:`PolicyRefused`); lookups are checked again when
they are answered, so a policy tightened after a grant was made binds that grant too. A
purpose with a ``threshold`` is a yes/no decision: its grants hold that cut-off (or a
higher one the subject fixes) and a ``decision`` lookup answers its words, e.g.
``{"decision": "waive_deposit"}``, never the score.

Every check depends on the purpose and scope asked only, never on the subject, so a policy
refusal may say why without telling a partner anything about anyone. Cut-offs are points of
the scale the served scores were computed on, and :func:`on_scale` is the one rule for
them: a file is checked against that scale when ``serve`` starts, a grant's cut-off
against the run served when it is made, and each answer's cut-off (the policy's, the
grant's or the one asked) against the scale of the run it comes from (a rescore may
publish a run on another scale under a running server). That last check may concern the
grant's own cut-off, so its reason never repeats the cut-off.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from creditgraph.access.errors import Refused
from creditgraph.access.scopes import Scope
from creditgraph.errors import ConfigError, InvalidArgument
from creditgraph.scoring.scale import ScoreScale

PURPOSE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
MAX_DAYS = 366  # no grant lasts longer, whatever its purpose
DEFAULT_FILE = "policies.toml"
_PURPOSE_KEYS = {"title", "scope", "max_days", "threshold", "yes", "no"}
_UNLISTED_KEYS = {"allowed", "scope", "max_days"}
OFF_SCALE = "threshold_outside_scale"  # the refusal of a cut-off off the served run's range


class PolicyRefused(Refused):
    """A grant or lookup asks more than its purpose's policy allows.

    ``reason`` is the code (audit log, HTTP ``detail``); the message says why in plain words
    built from the policy alone, never from the values sent.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason)
        self.args = (message,)
        self.message = message


@dataclass(frozen=True)
class PurposePolicy:
    """What one purpose allows. ``purpose`` is None for the ``[unlisted]`` rule."""

    purpose: str | None
    title: str
    scope: Scope
    max_days: int
    threshold: int | None = None
    yes: str | None = None
    no: str | None = None

    @property
    def decision(self) -> tuple[str, str] | None:
        """The ``(yes, no)`` words of a yes/no purpose, else None."""
        return (self.yes, self.no) if self.yes is not None and self.no is not None else None

    @property
    def discloses_reasons(self) -> bool:
        """Whether factors and reasons may be disclosed (only the ``full`` scope shows them)."""
        return self.scope is Scope.FULL

    def check_scope(self, scope: Scope) -> None:
        """Refuse a scope wider than the policy's, or a decision where there is none."""
        if not self.scope.covers(scope):
            raise PolicyRefused(
                "scope_exceeds_policy",
                f"this purpose allows at most scope {self.scope.value!r}",
            )
        if scope is Scope.DECISION and self.decision is None:
            raise PolicyRefused(
                "no_decision_in_policy",
                "this purpose has no yes/no decision; ask for scope 'threshold' or wider",
            )

    def check_scale(self, scale: ScoreScale, cutoff: int | None = None) -> None:
        """Refuse to answer on ``scale`` when the purpose's cut-off lies outside its range (a
        run scored on another scale than the policy was written for: every subject would get
        the same word), or ``cutoff``, the one the answer is at (asked, or held by the grant).

        The message never repeats ``cutoff``: it may be the subject's choice.
        """
        if self.threshold is not None and not on_scale(self.threshold, scale):
            raise PolicyRefused(
                OFF_SCALE,
                f"this purpose's cut-off {self.threshold} lies outside the score range "
                f"{_range(scale)} of the scores served; the policy needs revising",
            )
        if cutoff is not None and not on_scale(cutoff, scale):
            raise PolicyRefused(
                OFF_SCALE,
                "this lookup's cut-off (the one asked, or the one the grant holds) lies outside "
                f"the score range {_range(scale)} of the scores served; no answer is given at it",
            )

    def cutoff(self, grant_threshold: int | None) -> int | None:
        """The one cut-off a grant answers at: its own if fixed, else the policy's."""
        return grant_threshold if grant_threshold is not None else self.threshold

    def lapses_at(self, created_at: datetime) -> datetime:
        """When a grant made at ``created_at`` stops answering under this policy."""
        return created_at + timedelta(days=self.max_days)

    def as_dict(self) -> dict[str, Any]:
        """The policy as the API and the CLI show it."""
        return {
            "purpose": self.purpose,
            "title": self.title,
            "scope": self.scope.value,
            "max_days": self.max_days,
            "threshold": self.threshold,
            "decision": {"yes": self.yes, "no": self.no} if self.decision else None,
            "discloses_reasons": self.discloses_reasons,
        }


@dataclass(frozen=True)
class Policies:
    """Every purpose's policy, and the rule for purposes not listed (None: refused)."""

    purposes: Mapping[str, PurposePolicy]
    unlisted: PurposePolicy | None
    source: str = field(default="", compare=False)

    def find(self, purpose: str) -> PurposePolicy | None:
        """The policy of ``purpose``, or None if it is unlisted and unlisted ones are refused."""
        return self.purposes.get(purpose, self.unlisted)

    def for_purpose(self, purpose: str) -> PurposePolicy:
        """The policy of ``purpose``; :class:`PolicyRefused` if it is unlisted and refused."""
        found = self.find(purpose)
        if found is None:
            raise PolicyRefused(
                "unlisted_purpose",
                "this purpose is not among the operator's policies (GET /v1/policies lists them)",
            )
        return found

    def check_grant(
        self,
        purpose: str,
        scope: Scope,
        *,
        created_at: datetime,
        expires_at: datetime,
        threshold: int | None,
        scale: ScoreScale | None = None,
    ) -> int | None:
        """Check a grant against its purpose's policy; returns the cut-off the grant holds.

        A yes/no purpose's grant holds the policy's cut-off unless the subject fixed a
        higher one; a lower one would turn the partner's "no" into "yes". ``scale``: the
        scale of the run served now (None: none to check against); a purpose's cut-off off
        its range is refused like a lookup (``threshold_outside_scale``), and the subject's
        own ``threshold`` off it raises :class:`InvalidArgument` naming the range.
        """
        policy = self.for_purpose(purpose)
        policy.check_scope(scope)
        if scale is not None:
            policy.check_scale(scale)  # no grant for the purpose could answer on this run
        if expires_at > policy.lapses_at(created_at):
            raise PolicyRefused(
                "duration_exceeds_policy",
                f"a grant for this purpose may last at most {policy.max_days} days",
            )
        if policy.threshold is not None and threshold is not None and threshold < policy.threshold:
            raise PolicyRefused(
                "threshold_below_policy",
                f"this purpose's cut-off is {policy.threshold}; a grant may fix a higher one, "
                "never a lower one",
            )
        if scale is not None and threshold is not None and not on_scale(threshold, scale):
            raise InvalidArgument(
                f"threshold must lie within the score range {_range(scale)} of the scores served"
            )
        return policy.cutoff(threshold)

    def check_lookup(self, purpose: str, scope: Scope) -> PurposePolicy:
        """Check a lookup's purpose and scope (before any grant is read); returns the policy."""
        policy = self.for_purpose(purpose)
        policy.check_scope(scope)
        return policy

    def rows(self) -> list[dict[str, Any]]:
        """Every listed purpose, then the unlisted rule if there is one (API and CLI)."""
        listed = [self.purposes[name].as_dict() for name in sorted(self.purposes)]
        return listed + ([self.unlisted.as_dict()] if self.unlisted else [])


def load_policies(path: Path | str | None = None, *, scale: ScoreScale | None = None) -> Policies:
    """Read and check a policy file (the shipped default when ``path`` is None).

    ``scale``: thresholds must lie inside its range (``serve``: the published run's; default:
    the default scale). Raises :class:`ConfigError` naming the file, the purpose and the
    key at fault.
    """
    if path is None:
        source = f"the shipped {DEFAULT_FILE}"
        text = resources.files("creditgraph.access").joinpath(DEFAULT_FILE).read_text("utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the policy file {source}: {exc.strerror}") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    return _policies(values, source, scale or ScoreScale())


@cache
def default_policies() -> Policies:
    """The shipped policies (read once)."""
    return load_policies()


def on_scale(threshold: int, scale: ScoreScale) -> bool:
    """Whether a cut-off lies in the scale's range: the one rule, when a policy file is read
    (against the scale served), when a grant is made (against the run served then) and at
    every lookup (against the run answered from)."""
    return scale.min_score <= threshold <= scale.max_score


def _range(scale: ScoreScale) -> str:
    return f"{scale.min_score:.0f}-{scale.max_score:.0f}"


def _policies(values: dict[str, Any], source: str, scale: ScoreScale) -> Policies:
    _known(values, {"purposes", "unlisted"}, source)
    purposes = values.get("purposes", {})
    if not isinstance(purposes, dict):
        raise ConfigError(f"{source}: [purposes] must be a table of purposes")
    listed = {
        name: _purpose(name, table, f"{source}: purpose {name!r}", scale)
        for name, table in purposes.items()
    }
    return Policies(listed, _unlisted(values.get("unlisted", {}), source), source)


def _purpose(name: str, table: Any, where: str, scale: ScoreScale) -> PurposePolicy:
    if not PURPOSE.match(name):
        raise ConfigError(f"{where}: a purpose is snake_case, e.g. 'hotel_stay'")
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    _known(table, _PURPOSE_KEYS, where)
    threshold = table.get("threshold")
    if threshold is not None:
        threshold = _whole(threshold, "threshold", where)
        if not on_scale(threshold, scale):
            raise ConfigError(
                f"{where}: threshold {threshold} is outside the score range {_range(scale)}"
            )
    words = [table.get("yes"), table.get("no")]
    given = [threshold is not None, *(word is not None for word in words)]
    if any(given) and not all(given):
        raise ConfigError(f"{where}: a yes/no purpose needs threshold, yes and no together")
    for key, word in zip(("yes", "no"), words, strict=True):
        if word is not None and not (isinstance(word, str) and PURPOSE.match(word)):
            raise ConfigError(f"{where}: {key} must be a snake_case word, not {word!r}")
    if words[0] is not None and words[0] == words[1]:
        raise ConfigError(f"{where}: yes and no must differ")
    scope = _scope(table, where)
    if scope is Scope.DECISION and threshold is None:
        raise ConfigError(f"{where}: scope 'decision' needs a threshold, yes and no")
    title = table.get("title", name)
    if not isinstance(title, str) or not title.strip():
        raise ConfigError(f"{where}: title must be text")
    return PurposePolicy(
        name, title.strip(), scope, _days(table, where), threshold, words[0], words[1]
    )


def _unlisted(table: Any, source: str) -> PurposePolicy | None:
    where = f"{source}: [unlisted]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    _known(table, _UNLISTED_KEYS, where)
    allowed = table.get("allowed", False)
    if not isinstance(allowed, bool):
        raise ConfigError(f"{where}: allowed must be true or false, not {allowed!r}")
    if not allowed:
        return None
    scope = _scope(table, where)
    if scope is Scope.DECISION:
        raise ConfigError(f"{where}: unlisted purposes have no decision; give a wider scope")
    return PurposePolicy(None, "Any purpose not listed", scope, _days(table, where))


def _scope(table: dict[str, Any], where: str) -> Scope:
    value = table.get("scope")
    try:
        return Scope(str(value))
    except ValueError:
        known = ", ".join(s.value for s in sorted(Scope, key=lambda s: s.rank))
        raise ConfigError(f"{where}: scope must be one of {known}, not {value!r}") from None


def _days(table: dict[str, Any], where: str) -> int:
    if "max_days" not in table:
        raise ConfigError(f"{where}: max_days is required")
    days = _whole(table["max_days"], "max_days", where)
    if not 1 <= days <= MAX_DAYS:
        raise ConfigError(f"{where}: max_days must be 1-{MAX_DAYS}, not {days}")
    return days


def _whole(value: Any, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: {key} must be a whole number, not {value!r}")
    return value


def _known(table: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
