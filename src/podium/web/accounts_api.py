"""Accounts and sessions over HTTP: a token for API clients, cookies for the browser.

`podium_csrf` (readable by the page) must be echoed in `X-CSRF-Token` on every cookie-authenticated
write, so another site cannot post in a user's name; it is an HMAC of the session's id, so another
session's CSRF cookie, planted or replayed, does not match. Signing out revokes the session everywhere.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from podium.admission.limits import network_of
from podium.domain.tokens import SESSION_TTL_S
from podium.errors import Forbidden, Unauthenticated
from podium.ids import UserId
from podium.services import of
from podium.web.http import json_response, read_model
from podium.web.schemas.audience import Account as AccountView
from podium.web.schemas.audience import Credentials, Session, SignedOut

SESSION_COOKIE = "podium_session"
CSRF_COOKIE = "podium_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def client_address(request: Request) -> str:
    """What the per-address limits count a request under: its client's IPv4 address, or its IPv6
    /64 (one home or site gets a whole /64, so a client could pick a new address for each request)."""
    return network_of(request.client.host) if request.client else "unknown"


async def optional_user(request: Request) -> tuple[UserId, str] | None:
    """The account behind a request that anyone may also make without one (creating a space):
    None without credentials; credentials that are sent must verify, as for `signed_in_user`."""
    if request.headers.get("authorization") or request.cookies.get(SESSION_COOKIE):
        return await signed_in_user(request)
    return None


async def signed_in_user(request: Request) -> tuple[UserId, str]:
    """The account behind a request: a `Bearer u.…` token, or the session cookie plus its CSRF echo;
    either way a session that was not signed out."""
    accounts = of(request).accounts
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        grant = await accounts.authenticate(header[7:].strip())
        return grant.user_id, grant.username
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthenticated("sign in to post (listening needs no account)")
    grant = accounts.signer.verify_session(cookie)  # its signature and age only: the CSRF check comes first
    if request.method not in SAFE_METHODS:
        # The echo must be this session's own token (the HMAC of its id), not just equal to a cookie.
        expected = accounts.signer.csrf_for(grant.session_id)
        sent = request.headers.get(CSRF_HEADER, "")
        # As bytes: compare_digest refuses str with non-ASCII characters (a header may carry any).
        if not hmac.compare_digest(expected.encode(), sent.encode()):
            raise Forbidden("missing or wrong X-CSRF-Token header (reload the page and try again)")
    await accounts.check_not_revoked(grant)
    return grant.user_id, grant.username


async def sign_up(request: Request) -> Response:
    body = await read_model(request, Credentials, 2048)
    account = await of(request).accounts.sign_up(body.username, body.password, client_address(request))
    return json_response(AccountView(id=account.id, username=account.username), status=201)


async def sign_in(request: Request) -> Response:
    body = await read_model(request, Credentials, 2048)
    accounts = of(request).accounts
    account, token = await accounts.sign_in(body.username, body.password, client_address(request))
    response = json_response(Session(token=token, user=AccountView(id=account.id, username=account.username)))
    response.set_cookie(
        SESSION_COOKIE, token, max_age=SESSION_TTL_S, httponly=True, secure=True, samesite="lax", path="/"
    )
    csrf = accounts.signer.csrf_for(accounts.signer.verify_session(token).session_id)
    response.set_cookie(CSRF_COOKIE, csrf, max_age=SESSION_TTL_S, httponly=False, secure=True, samesite="strict")
    return response


async def sign_out(request: Request) -> Response:
    """Revokes the session (its Bearer token, else its cookie) and clears the cookies; no CSRF echo is
    needed: another site cannot send a DELETE with the cookies without a CORS preflight."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(SESSION_COOKIE, "")
    if token:
        await of(request).accounts.sign_out(token)
    response = json_response(SignedOut(signed_out=True))
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=True, samesite="strict")
    return response


async def whoami(request: Request) -> Response:
    user_id, username = await signed_in_user(request)
    return json_response(AccountView(id=user_id, username=username))
