"""The HTTP API (FastAPI): subjects manage grants and read who looked; partners look up.

Partners authenticate with ``X-API-Key``; subjects with ``Authorization: Bearer``. A
refused lookup always answers 403 ``no_active_grant``, whatever the cause (unknown
subject, no grant, expired, expired by policy, revoked, used up, other purpose, scope or
cut-off): the cause goes to the audit log, where the subject can read it. Credentials are
checked before a request body is read; bodies are capped at 16 KiB (413) and a 422 names
the fields at fault, never the values sent. Every refused credential and malformed lookup
is audited too. Subject ids travel in request bodies, not URLs, and the access log is off,
so no personal data reaches server logs.

Grants and lookups are checked against the purpose's policy
(:mod:`creditgraph.access.policy`, listed at ``GET /v1/policies``). A request asking more
than its purpose allows answers 403 with the code and the reason in words: that depends on
the purpose and scope asked only, never on the subject, so it tells a partner nothing.
Cut-offs are read on the run served: a grant's when it is made (the source's
``served_scale``), each lookup's on the run its score comes from.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from creditgraph.access import audit, grants, registry
from creditgraph.access.db import AccessDB, Clock, utc_now
from creditgraph.access.errors import Refused, ServerNotStarted, UnknownPartner
from creditgraph.access.lookup import lookup
from creditgraph.access.policy import PURPOSE, Policies, PolicyRefused, default_policies
from creditgraph.access.scopes import Scope
from creditgraph.access.scores import ScoreSource, served_scale
from creditgraph.scoring.scale import ScoreScale

NO_ACTIVE_GRANT = "no_active_grant"
INVALID_CREDENTIALS = "invalid_credentials"
MAX_BODY_BYTES = 16 * 1024
_partner_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="partner API key")
_subject_token = HTTPBearer(auto_error=False, description="subject token")
BodyT = TypeVar("BodyT", bound=BaseModel)


# -- request and response bodies ----------------------------------------------------------
Purpose = Annotated[str, Field(pattern=PURPOSE.pattern, examples=["hotel_stay"])]
ScoreThreshold = Annotated[int, Field(ge=0, le=2000)]


class GrantIn(BaseModel):
    partner_id: str = Field(max_length=64)
    purpose: Purpose
    scope: Scope
    expires_at: datetime = Field(description="ISO 8601 with timezone, at most 366 days ahead")
    max_uses: int | None = Field(default=None, ge=1)
    threshold: ScoreThreshold | None = Field(
        default=None,
        description="the one cut-off the partner may ask about (else the purpose's policy or "
        "the partner's first question fixes it); never below the policy's",
    )


class GrantOut(BaseModel):
    grant_id: str
    partner_id: str
    purpose: str
    scope: Scope
    created_at: datetime
    expires_at: datetime = Field(
        description="when the grant stops answering: the expiry it was given, or earlier when "
        "its purpose's policy now allows a shorter life"
    )
    max_uses: int | None
    uses: int
    threshold: int | None
    revoked_at: datetime | None
    status: grants.GrantStatus = Field(
        description="active: it answers; expired_by_policy: its purpose's policy, tightened "
        "after it was made, ended it before its own expiry"
    )


class DecisionOut(BaseModel):
    yes: str
    no: str


class PolicyOut(BaseModel):
    purpose: str | None = Field(description="null: the rule for purposes not listed")
    title: str
    scope: Scope = Field(description="the widest scope a grant may have and a lookup may ask")
    max_days: int = Field(description="the longest a grant may last")
    threshold: int | None = Field(description="the cut-off of a yes/no purpose")
    decision: DecisionOut | None = Field(description="the words a 'decision' lookup answers")
    discloses_reasons: bool = Field(description="whether factors and reasons may be disclosed")


class PartnerOut(BaseModel):
    partner_id: str
    name: str


class AccessEntryOut(BaseModel):
    seq: int
    at: datetime
    event: str
    partner_id: str | None
    partner_name: str | None
    purpose: str | None
    scope: str | None
    outcome: str
    reason: str | None
    fields_disclosed: list[str]


class LookupIn(BaseModel):
    subject_id: str = Field(min_length=1, max_length=200)
    purpose: Purpose
    scope: Scope
    threshold: ScoreThreshold | None = Field(
        default=None,
        description="required for scope 'threshold', refused otherwise ('decision' answers "
        "at the grant's cut-off)",
    )

    @model_validator(mode="after")
    def _threshold_only_for_threshold_scope(self) -> LookupIn:
        if (self.threshold is None) == (self.scope is Scope.THRESHOLD):
            raise ValueError("threshold is required for scope 'threshold' and only there")
        return self


class LookupOut(BaseModel):
    purpose: str
    scope: Scope
    answer: dict[str, Any] = Field(
        description="decision: decision (the purpose's yes or no word) · "
        "threshold: meets_threshold · band: band_low, band_high · "
        "score: score, scored_at · full: score, scored_at, factors, reasons"
    )


# -- authentication, bodies, errors ----------------------------------------------------------
def _unauthorized(scheme: str) -> HTTPException:
    """The one answer to any bad credential (byte-identical whatever went wrong)."""
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, INVALID_CREDENTIALS, headers={"WWW-Authenticate": scheme}
    )


def _session(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_subject_token)],
) -> tuple[str, str]:
    """``(subject_id, token_id)`` of the bearer token; a refused one is audited, then 401."""
    db: AccessDB = request.app.state.db
    token = creds.credentials if creds else None
    found = registry.authenticate_subject_token(db, token)
    if found is None:
        subject_id, reason = registry.subject_token_failure(db, token)
        audit.record(db, "subject_auth", "refused", subject_id=subject_id, reason=reason)
        raise _unauthorized("Bearer")
    return found


async def _subject(session: Annotated[tuple[str, str], Depends(_session)]) -> str:
    return session[0]


# The key header is read by an async dependency and checked inside the (async) endpoint,
# before the body is read; an answered lookup then costs one worker-thread hop.
PartnerKey = Annotated[str | None, Depends(_partner_key)]
Session = Annotated[tuple[str, str], Depends(_session)]
Subject = Annotated[str, Depends(_subject)]


class _BadBody(Exception):
    """A request body that is too large (413) or does not validate (422)."""

    def __init__(self, reason: str, response: HTTPException | RequestValidationError) -> None:
        super().__init__(reason)
        self.reason, self.response = reason, response


async def _read_json(request: Request, model: type[BodyT]) -> BodyT:
    """The request body as ``model``: at most :data:`MAX_BODY_BYTES`, read only when asked.

    Called after authentication, so an unauthenticated body is never read or validated.
    """
    too_large = _BadBody(
        "body_too_large", HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "body_too_large")
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    try:
        return model.model_validate_json(b"".join(chunks))
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise _BadBody(
            "malformed_request",
            RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]),
        ) from None


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body the endpoint reads itself (after authenticating)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)  # Scope: already among the components (the answers use it)
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


async def _policy_refused(_: Request, exc: Exception) -> JSONResponse:
    """403 with the policy's code and reason (built from the policy, never from the request)."""
    assert isinstance(exc, PolicyRefused)
    return JSONResponse({"detail": exc.reason, "reason": exc.message}, status_code=403)


async def _validation_failed(_: Request, exc: Exception) -> JSONResponse:
    """422 naming where and why, never what was sent (FastAPI's default echoes the input)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
    return JSONResponse({"detail": detail}, status_code=422)


# -- the app ------------------------------------------------------------------------------
def create_app(
    db_path: Path,
    scores: ScoreSource,
    *,
    clock: Clock = utc_now,
    durable: bool = True,
    policies: Policies | None = None,
    scale: ScoreScale | None = None,
) -> FastAPI:
    """The access API over the database at ``db_path`` (created if missing) and ``scores``.

    ``durable``: fsync each commit so no answered lookup's audit entry is lost to a power
    cut (see :class:`~creditgraph.access.db.AccessDB`). ``policies``: what each purpose
    allows (default: the shipped ones). Answers are on the scale of the run each score comes
    from; ``scale`` stands in for scores that do not say (default: 350-950).
    """
    policies = policies or default_policies()
    scale = scale or ScoreScale()
    db = AccessDB(db_path, clock=clock, durable=durable)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        db.close()

    app = FastAPI(
        title="creditgraph access",
        version="1",
        summary="Score lookups for partners, only with the subject's grant; every access audited.",
        lifespan=lifespan,
    )
    app.state.db = db
    app.add_exception_handler(RequestValidationError, _validation_failed)
    app.add_exception_handler(PolicyRefused, _policy_refused)

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/policies", tags=["service"], response_model=list[PolicyOut])
    def list_policies() -> list[PolicyOut]:
        """What each purpose allows: widest scope, longest grant, yes/no decision (public)."""
        return [PolicyOut.model_validate(row) for row in policies.rows()]

    @app.post(
        "/v1/lookup",
        tags=["partner"],
        response_model=LookupOut,
        responses={
            401: {"description": INVALID_CREDENTIALS},
            403: {
                "description": f"{NO_ACTIVE_GRANT}; or a policy code with its reason when the "
                "purpose does not allow the scope asked (see GET /v1/policies), or "
                "threshold_outside_scale when the cut-off is off the scores served"
            },
            404: {"description": "no_score: the subject granted access but has no score yet"},
            413: {"description": "body_too_large: over 16 KiB"},
            503: {"description": "score_unavailable: scores are loading or unreadable"},
        },
        openapi_extra=_json_body(LookupIn),
    )
    async def do_lookup(request: Request, key: PartnerKey) -> LookupOut:
        """Look a subject up under a purpose; answered only with a matching active grant."""
        # One indexed read, on the event loop: the answered path keeps a single thread hop.
        partner_id = registry.authenticate_partner(db, key)
        if partner_id is None:
            await run_in_threadpool(_refuse_partner_key, db, key)
            raise _unauthorized("ApiKey")
        try:
            body = await _read_json(request, LookupIn)
        except _BadBody as bad:
            await run_in_threadpool(
                audit.record, db, "lookup", "refused", partner_id=partner_id, reason=bad.reason
            )
            raise bad.response from None
        try:
            answer = await run_in_threadpool(
                lookup,
                db,
                scores,
                partner_id=partner_id,
                subject_id=body.subject_id,
                purpose=body.purpose,
                scope=body.scope,
                threshold=body.threshold,
                policies=policies,
                scale=scale,
            )
        except PolicyRefused:
            raise  # audited; 403 with the policy's code and reason (_policy_refused)
        except Refused as refusal:
            if refusal.reason == "no_score":
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no_score") from None
            if refusal.reason == "score_unavailable":
                raise HTTPException(
                    status.HTTP_503_SERVICE_UNAVAILABLE, "score_unavailable"
                ) from None
            raise HTTPException(status.HTTP_403_FORBIDDEN, NO_ACTIVE_GRANT) from None
        return LookupOut(purpose=answer.purpose, scope=answer.scope, answer=answer.answer)

    @app.get("/v1/partners", tags=["subject"], response_model=list[PartnerOut])
    def partners(_: Subject) -> list[PartnerOut]:
        """Partners a subject may grant access to."""
        return [
            PartnerOut(partner_id=p.partner_id, name=p.name)
            for p in registry.partners_in(db, active_only=True)
        ]

    @app.post(
        "/v1/grants",
        tags=["subject"],
        response_model=GrantOut,
        status_code=status.HTTP_201_CREATED,
        responses={
            403: {
                "description": "a policy code with its reason: more than the purpose allows, "
                "or threshold_outside_scale: its cut-off is off the scores served"
            },
            413: {"description": "body_too_large: over 16 KiB"},
            422: {"description": "a field at fault, e.g. a threshold off the scores served"},
        },
        openapi_extra=_json_body(GrantIn),
    )
    async def create_grant(request: Request, subject_id: Subject) -> GrantOut:
        """Grant one partner access to your score for one purpose and scope, until a date."""
        refused: tuple[str, Exception] | None = None
        try:
            body = await _read_json(request, GrantIn)
            grant = await run_in_threadpool(
                partial(grant_on_served_run, subject_id=subject_id, **body.model_dump())
            )
        except _BadBody as bad:
            refused = bad.reason, bad.response
        except PolicyRefused as exc:
            refused = exc.reason, exc
        except UnknownPartner:
            refused = "unknown_partner", HTTPException(404, "unknown_partner")
        except ValueError as exc:  # its messages never repeat the values sent
            refused = "invalid_grant", HTTPException(422, str(exc))
        if refused is not None:
            reason, response = refused
            await run_in_threadpool(
                audit.record, db, "grant_created", "refused", subject_id=subject_id, reason=reason
            )
            raise response
        return _grant_out(grant, db.now(), policies)

    def grant_on_served_run(**fields: Any) -> grants.Grant:
        """:func:`grants.create_grant` with its cut-off read on the run served now, as its
        lookups would read it (a manifest read until the first load is in: off the loop)."""
        on = served_scale(scores) or scale
        return grants.create_grant(db, policies=policies, scale=on, **fields)

    @app.get("/v1/grants", tags=["subject"], response_model=list[GrantOut])
    def list_grants(subject_id: Subject) -> list[GrantOut]:
        """Your grants, newest first, with their status under the policies in force."""
        now = db.now()
        return [_grant_out(g, now, policies) for g in grants.list_grants(db, subject_id)]

    @app.delete("/v1/grants/{grant_id}", tags=["subject"], status_code=status.HTTP_204_NO_CONTENT)
    def revoke_grant(grant_id: str, subject_id: Subject) -> None:
        """Revoke one of your grants; it stops answering at once."""
        if not grants.revoke_grant(db, subject_id, grant_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown_grant")

    @app.delete("/v1/token", tags=["subject"], status_code=status.HTTP_204_NO_CONTENT)
    def revoke_token(
        session: Session,
        all_tokens: Annotated[bool, Query(alias="all", description="every token of yours")] = False,
    ) -> None:
        """Revoke the token you are using (or all of yours): it stops working at once."""
        subject_id, token_id = session
        if all_tokens:
            registry.revoke_subject_tokens_in(db, subject_id)
        else:
            registry.revoke_subject_token_in(db, token_id)

    @app.get("/v1/access-log", tags=["subject"], response_model=list[AccessEntryOut])
    def access_log(
        subject_id: Subject,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before_seq: Annotated[int | None, Query(ge=1)] = None,
    ) -> list[AccessEntryOut]:
        """Who looked at your score and when (granted and refused), and your grant changes."""
        names = {p.partner_id: p.name for p in registry.partners_in(db)}
        entries = audit.entries_for_subject(db, subject_id, limit=limit, before_seq=before_seq)
        return [
            AccessEntryOut(
                seq=e.seq,
                at=e.at,
                event=e.event,
                partner_id=e.partner_id,
                partner_name=names.get(e.partner_id or ""),
                purpose=e.purpose,
                scope=e.scope,
                outcome=e.outcome,
                reason=e.reason,
                fields_disclosed=list(e.fields),
            )
            for e in entries
        ]

    return app


def _refuse_partner_key(db: AccessDB, key: str | None) -> None:
    """Audit a refused partner key: the partner id it names (if well-formed) and why."""
    partner_id, reason = registry.partner_key_failure(db, key)
    audit.record(db, "lookup", "refused", partner_id=partner_id, reason=reason)


def _grant_out(grant: grants.Grant, now: datetime, policies: Policies) -> GrantOut:
    """The grant as its subject sees it: status and expiry as a lookup would find them."""
    # The policy a lookup would apply; None (its purpose refused as unlisted): as before.
    policy = policies.find(grant.purpose)
    return GrantOut(
        grant_id=grant.grant_id,
        partner_id=grant.partner_id,
        purpose=grant.purpose,
        scope=grant.scope,
        created_at=grant.created_at,
        expires_at=grant.lapses_at(policy),
        max_uses=grant.max_uses,
        uses=grant.uses,
        threshold=grant.threshold,
        revoked_at=grant.revoked_at,
        status=grant.status(now, policy),
    )


# -- running it ---------------------------------------------------------------------------
def _config(app: FastAPI, host: str, port: int, log_level: str) -> uvicorn.Config:
    # access_log off: request lines carry client addresses, and nothing personal is logged.
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)


def serve(
    db_path: Path,
    scores: ScoreSource,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    durable: bool = True,
    log_level: str = "warning",
    policies: Policies | None = None,
    scale: ScoreScale | None = None,
) -> None:
    """Serve the access API until interrupted (loopback by default; docs at ``/docs``)."""
    app = create_app(Path(db_path), scores, durable=durable, policies=policies, scale=scale)
    server = uvicorn.Server(_config(app, host, port, log_level))
    settle_heap()
    server.run()


def settle_heap() -> None:
    """Move everything alive now (modules, the score index) out of the garbage collector's view.

    A full collection walks every tracked object, ~200k after imports: tens of ms that
    would otherwise land on whichever request triggered it.
    """
    gc.collect()
    gc.freeze()


@contextmanager
def running_server(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` under uvicorn in a background thread; yields its base URL.

    ``port=0`` picks a free port. For tests, benchmarks and notebooks.
    """
    server = uvicorn.Server(_config(app, host, port, "warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ServerNotStarted(
                f"the access server did not start on {host}:{port or 'a free port'} within 10 s "
                "(is the port taken?)"
            )
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]  # the real port when port=0
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
