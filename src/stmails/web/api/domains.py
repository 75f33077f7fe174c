"""Sending domains: DKIM keys (`/api/domains/{domain}/dkim`) and the domain check.

- `GET /api/domains`: the domains with keys, each with its keys.
- `GET /api/domains/{domain}/dkim`: the domain's keys, each with the DNS record to publish.
- `POST /api/domains/{domain}/dkim` `{"selector", "bits"}` (generate) or
  `{"selector", "private_key"}` (import a PEM key): the new `pending` key.
- `PUT /api/domains/{domain}/dkim/{selector}` `{"status": "active" | "retired"}`: the keys that
  changed.
- `DELETE /api/domains/{domain}/dkim/{selector}`: `true` (pending or retired keys only).
- `GET /api/domains/{domain}/check?envelope_domain=`: the domain report (services.domain_check).

Activation asks DNS first: a key whose record is not published (or publishes another key) is
refused with 400 naming `status` and the record to publish, so a key that cannot verify never
signs. The DNS resolver is the system's; tests put a factory in the app state's extras under
`DNS_RESOLVER` (the one seam for DNS).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import dns.resolver
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from stmails.db.handles import Session
from stmails.db.models import DkimKey
from stmails.services import dkim_keys
from stmails.services.domain_check import KeyToCheck, check_domain, dkim_publication
from stmails.services.errors import InvalidInput
from stmails.web.api.sending_common import sending_config
from stmails.web.api.subscribers import JSON_BODY
from stmails.web.body import json_object, run_db, text_field
from stmails.web.deps import Principal, app_state, require_user
from stmails.web.errors import ApiError, bad_request
from stmails.web.permissions import require_permission
from stmails.web.responses import JSONResponse, data, timestamp

router = APIRouter(tags=["domains"], dependencies=[Depends(require_user)])

# The key in AppState.extras of a callable that returns the dnspython resolver to use.
DNS_RESOLVER = "dns.resolver"
User = Annotated[Principal, Depends(require_user)]


def resolver_for(request: Request) -> dns.resolver.Resolver:
    """The resolver the domain routes ask: the injected one, else the system's (503 when the
    host has no resolver configuration)."""
    factory: Callable[[], dns.resolver.Resolver] | None = app_state(request).extras.get(
        DNS_RESOLVER
    )
    if factory is not None:
        return factory()
    try:
        return dns.resolver.Resolver()
    except dns.resolver.NoResolverConfiguration:
        raise ApiError(503, "this host has no DNS resolver configuration") from None


def key_view(key: DkimKey) -> dict[str, Any]:
    """A key as the API shows it: never the private key."""
    return {
        "id": key.id,
        "domain": key.domain,
        "selector": key.selector,
        "algorithm": key.algorithm,
        "bits": key.bits,
        "source": key.source,
        "status": key.status,
        "created_at": timestamp(key.created_at),
        "activated_at": timestamp(key.activated_at),
        "retired_at": timestamp(key.retired_at),
        "dns_record": dkim_keys.dns_record(key).to_dict(),
    }


def _secret(request: Request) -> bytes:
    return app_state(request).settings.resolved_secret_key().encode()


@router.get(
    "/domains", dependencies=[require_permission("domains:get")], summary="Domains with DKIM keys"
)
async def list_domains(request: Request) -> JSONResponse:
    def work(session: Session) -> list[dict[str, Any]]:
        domains: dict[str, list[dict[str, Any]]] = {}
        for key in dkim_keys.keys_of(session):
            domains.setdefault(key.domain, []).append(key_view(key))
        return [{"domain": name, "keys": keys} for name, keys in domains.items()]

    return data(await run_db(request, work))


@router.get(
    "/domains/{domain}/dkim",
    dependencies=[require_permission("domains:get")],
    summary="A domain's DKIM keys",
)
async def list_keys(request: Request, domain: str) -> JSONResponse:
    def work(session: Session) -> list[dict[str, Any]]:
        return [key_view(k) for k in dkim_keys.keys_of(session, domain)]

    return data(await run_db(request, work))


@router.post(
    "/domains/{domain}/dkim",
    dependencies=[require_permission("domains:manage")],
    summary="Generate or import a DKIM key",
    openapi_extra=JSON_BODY,
)
async def create_key(request: Request, domain: str) -> JSONResponse:
    body = await json_object(request)
    selector = text_field(body, "selector", 63)
    if not selector:
        raise bad_request("selector: required")
    private_key = text_field(body, "private_key", dkim_keys.MAX_PEM_CHARS)
    bits = body.get("bits", dkim_keys.DEFAULT_BITS)
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise bad_request("bits: must be a number")
    if private_key is not None and "bits" in body:
        raise bad_request("bits: an imported key has its own size; give bits or private_key")
    secret = _secret(request)

    def work(session: Session) -> dict[str, Any]:
        if private_key is not None:
            key = dkim_keys.import_key(session, secret, domain, selector, private_key)
        else:
            key = dkim_keys.generate_key(session, secret, domain, selector, bits)
        return key_view(key)

    return data(await run_db(request, work, write=True))


@router.put(
    "/domains/{domain}/dkim/{selector}",
    dependencies=[require_permission("domains:manage")],
    summary="Activate or retire a DKIM key",
    openapi_extra=JSON_BODY,
)
async def change_key(request: Request, domain: str, selector: str, user: User) -> JSONResponse:
    status = text_field(await json_object(request), "status", 20)
    if status not in {"active", "retired"}:
        raise bad_request('status: must be "active" or "retired"')

    def read(session: Session) -> tuple[str, str, str]:
        key = dkim_keys.get_key(session, domain, selector)
        return key.domain, key.selector, key.public_key

    key_domain, key_selector, public_key = await run_db(request, read)
    if status == "active":
        # DNS is asked outside the transaction, which then re-reads the key.
        resolver = resolver_for(request)
        found = await run_in_threadpool(
            dkim_publication, resolver, key_selector, key_domain, public_key
        )
        if found.state == "unknown":
            raise ApiError(503, "DNS did not answer; try again later", {"Retry-After": "60"})
        if found.state != "match":

            def record(session: Session) -> str:
                key = dkim_keys.get_key(session, key_domain, key_selector)
                return dkim_keys.dns_record(key).value

            wanted = await run_db(request, record)
            what = "publishes another key" if found.state == "mismatch" else "has no DKIM record"
            raise InvalidInput(
                "status",
                f"{key_selector}._domainkey.{key_domain} {what}; publish TXT "
                f'"{wanted}" there first (DNS changes can take a while to be seen)',
            )

    def write(session: Session) -> list[dict[str, Any]]:
        key = dkim_keys.get_key(session, key_domain, key_selector)
        if status == "active":
            changed = dkim_keys.activate(session, key, actor=user.username)
        else:
            changed = [dkim_keys.retire(session, key, actor=user.username)]
        session.flush()
        return [key_view(k) for k in changed]

    return data(await run_db(request, write, write=True))


@router.delete(
    "/domains/{domain}/dkim/{selector}",
    dependencies=[require_permission("domains:manage")],
    summary="Delete a pending or retired DKIM key",
)
async def delete_key(request: Request, domain: str, selector: str) -> JSONResponse:
    def work(session: Session) -> bool:
        dkim_keys.delete_key(session, dkim_keys.get_key(session, domain, selector))
        return True

    return data(await run_db(request, work, write=True))


@router.get(
    "/domains/{domain}/check",
    dependencies=[require_permission("domains:get")],
    summary="Check a sending domain's SPF, DKIM, DMARC, alignment, MX and PTR",
)
async def get_check(request: Request, domain: str) -> JSONResponse:
    normalized = dkim_keys.normalize_domain(domain)
    given_envelope = request.query_params.get("envelope_domain", "").strip()

    def read(session: Session) -> tuple[list[KeyToCheck], str | None, list[str]]:
        keys = [
            KeyToCheck(k.selector, k.status, k.public_key, dkim_keys.dns_record(k).value)
            for k in dkim_keys.keys_of(session, normalized)
        ]
        config = sending_config(request, session)
        envelope = given_envelope or config.bounce_address.rpartition("@")[2] or None
        hosts = [server.host for server in config.smtp]
        return keys, envelope, hosts

    keys, envelope, hosts = await run_db(request, read)
    if envelope is not None:
        try:
            envelope = dkim_keys.normalize_domain(envelope)
        except InvalidInput as exc:
            raise bad_request(f"envelope_domain: {exc.message}") from None
    resolver = resolver_for(request)
    report = await run_in_threadpool(
        lambda: check_domain(
            normalized, resolver=resolver, keys=keys, envelope_domain=envelope, sending_hosts=hosts
        )
    )
    return data(report.to_dict())
