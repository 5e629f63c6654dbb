"""The acknowledge/resolve links in notifications, as the intake takes them.

A link is `GET /v1/incidents/{id}/{action}?expires=&by=&sig=`: the GET only shows a confirmation
page (mail scanners and chat previews open links; they must not acknowledge anything), whose button
POSTs the same URL. A POST carrying a valid signature needs no bearer token: it acts as the person the
link was sent to, recorded as `<by> (signed link)`. Browsers get HTML pages, API clients problem+json.
"""

from __future__ import annotations

import html
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from shared.auth import Principal, Role
from shared.http import problem
from shared.links import LinkSigner

LINK_SUFFIX = " (signed link)"
_PAST = {"acknowledge": "acknowledged", "resolve": "resolved"}


@dataclass(frozen=True)
class SignedQuery:
    """The query of a signed link (all None on an ordinary API call)."""

    expires: int | None = None
    by: str | None = None
    sig: str | None = None


def wants_html(request: Request) -> bool:
    """True for a browser navigating (its Accept names text/html), not for an API client."""
    return "text/html" in request.headers.get("accept", "")


class LinkRefused(Exception):
    """A link that is not accepted, and which of its parts is at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def response(self) -> Response:
        """403 problem+json naming the query parameter at fault."""
        return problem(403, "Link not accepted", self.message, errors=[{"field": self.field, "message": self.message}])

    def page(self) -> HTMLResponse:
        """The same, as a page for a person."""
        return _page("Link not accepted", f"<p>{html.escape(self.message)}</p>", 403)


def link_principal(
    signer: LinkSigner | None, action: str, incident_id: uuid.UUID, link: SignedQuery, now: datetime
) -> Principal:
    """The person a valid link was sent to; LinkRefused for a link altered, expired, or not accepted here."""
    if signer is None:
        raise LinkRefused("sig", "signed links are not accepted here: LINK_SECRET is not set on the intake")
    expires, by, sig = link.expires, link.by, link.sig
    if expires is None:
        raise LinkRefused("expires", "the link has no expires")
    if not by:
        raise LinkRefused("by", "the link has no by")
    if not sig:
        raise LinkRefused("sig", "the link has no sig")
    if now.timestamp() > expires:
        raise LinkRefused("expires", "the link expired; act in the console or with a newer notification")
    if not signer.verify(action, incident_id, expires, by, sig, now):
        raise LinkRefused("sig", "the link's signature does not match: it was altered or is not for this action")
    return Principal(by + LINK_SUFFIX, Role.RESPONDER)


def _page(title: str, body: str, status: int) -> HTMLResponse:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem}"
        "button{font:inherit;padding:.6rem 1.4rem}@media (prefers-color-scheme:dark)"
        "{body{background:#111;color:#eee}}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(document, status_code=status, headers={"Cache-Control": "no-store"})


def confirmation_page(action: str, incident_id: uuid.UUID, principal: Principal, key: str) -> HTMLResponse:
    """The page a link opens: what will happen, and one button that does it."""
    name = principal.name.removesuffix(LINK_SUFFIX)
    body = (
        f"<p>Incident <strong>{html.escape(key)}</strong> (<code>{incident_id}</code>) will be "
        f"{_PAST[action]}, recorded as done by <strong>{html.escape(name)}</strong>.</p>"
        f'<form method="post"><button type="submit" autofocus>{action.capitalize()}</button></form>'
    )
    return _page(f"{action.capitalize()} incident?", body, 200)


def done_page(action: str, key: str) -> HTMLResponse:
    """The page after the button: the command is in Kafka."""
    body = f"<p>Incident <strong>{html.escape(key)}</strong> is being {_PAST[action]}. You can close this page.</p>"
    return _page(f"Incident {_PAST[action]}", body, 202)


def error_page(response: Response) -> Response:
    """A problem answer as a page for a person: its title and detail, same status and headers."""
    try:
        content = json.loads(bytes(response.body))
    except (ValueError, TypeError):
        return response
    body = f"<p>{html.escape(str(content.get('detail') or ''))}</p>"
    page = _page(str(content.get("title", "Error")), body, response.status_code)
    if "retry-after" in response.headers:
        page.headers["retry-after"] = response.headers["retry-after"]
    return page
