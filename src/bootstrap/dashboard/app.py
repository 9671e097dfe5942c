"""The dashboard's aiohttp application: routes, the token check, CSRF-checked actions, pages
rendered on the server from templates/ (Jinja2, autoescaped). Reads run in a thread with the
synchronous clients `status` and `jobs` use (`dashboard.data`), so a slow server never blocks the
event loop; every action (retry, purge) is logged with who asked."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import redis
from aiohttp import web
from pymongo.database import Database
from pymongo.errors import PyMongoError

from bootstrap.console import span
from bootstrap.dashboard import charts, data, erd
from bootstrap.dashboard.auth import COOKIE, Guard, loopback_host, masked, same_origin
from bootstrap.jobs import admin
from bootstrap.layout.keys import QueueKeys
from bootstrap.redact import mask
from bootstrap.spec.model import Spec

log = logging.getLogger("bootstrap.dashboard")

TEMPLATES = Path(__file__).resolve().parent / "templates"
REFRESH_SECONDS = 5
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSION = web.RequestKey("session", str)  # the token the request came with ("" without one)

# No script or style from anywhere else; no framing (clickjacking); no Referer to other sites.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on form posts.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class Sources:
    """Where the pages read from: the spec (a callable: `up` hands its latest), MongoDB, Redis."""

    spec: Callable[[], Spec]
    db: Database[Any]
    redis: redis.Redis


def when(value: Any, now: float | None = None) -> str:
    """An instant as `2026-11-29 18:00:00 UTC (5m ago)`; a dash for none."""
    if value is None or value == "":
        return "—"
    ts = value.timestamp() if isinstance(value, datetime) else float(value)
    now = time.time() if now is None else now
    stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    delta = now - ts
    return f"{stamp} ({span(delta)} ago)" if delta >= 0 else f"{stamp} (in {span(-delta)})"


def size(value: int | None) -> str:
    if value is None:
        return "n/a"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["when"] = when
    env.filters["size"] = size
    env.filters["span"] = span
    return env


class Dashboard:
    def __init__(self, sources: Sources, guard: Guard) -> None:
        self.sources = sources
        self.guard = guard
        self.env = templates()

    # --- plumbing -------------------------------------------------------------------------------

    def page(self, request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
        spec = self.sources.spec()
        html = self.env.get_template(name).render(
            project=spec.project,
            path=request.path,
            csrf=self.guard.csrf(request.get(SESSION)),
            refresh=context.pop("refresh", 0),
            now=time.time(),
            **context,
        )
        return web.Response(text=html, status=status, content_type="text/html", headers=HEADERS)

    def problem(self, request: web.Request, status: int, message: str, refresh: int = 0) -> web.Response:
        return self.page(request, "problem.html", status=status, title=f"{status}", message=message, refresh=refresh)

    @web.middleware
    async def authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.guard.token is None and not loopback_host(request.host):
            log.warning("dashboard: refused %s %s from %s: Host %r is not this machine's loopback address",
                        request.method, request.path, request.remote, request.host)  # fmt: skip
            return web.Response(text="403: this dashboard answers on 127.0.0.1 only", status=403, headers=HEADERS)
        given = request.query.get("token")
        if given is not None and self.guard.token is not None:
            code = self.guard.check(given)
            if code != 200:
                log.warning("dashboard: refused %s %s from %s: wrong token %s", request.method, request.path,
                            request.remote, masked(given))  # fmt: skip
                return self.refused(code)
            # Keep the token in a cookie, out of the address bar and the history.
            rest = {k: v for k, v in request.query.items() if k != "token"}
            response = web.HTTPSeeOther(str(request.rel_url.with_query(rest)), headers=HEADERS)
            response.set_cookie(COOKIE, given, httponly=True, samesite="Strict", path="/")
            raise response
        presented = request.cookies.get(COOKIE)
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            presented = header[len("Bearer ") :]
        code = self.guard.check(presented)
        if code != 200:
            if presented:
                log.warning("dashboard: refused %s %s from %s: wrong token %s", request.method, request.path,
                            request.remote, masked(presented))  # fmt: skip
            return self.refused(code)
        request[SESSION] = presented or ""
        return await handler(request)

    @web.middleware
    async def unavailable(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """A server that fails while a page is read (down, failing over) gets a page saying which,
        and why, with status 503; never a traceback."""
        try:
            return await handler(request)
        except (redis.RedisError, PyMongoError) as exc:
            which = "Redis" if isinstance(exc, redis.RedisError) else "MongoDB"
            log.warning("dashboard: %s %s: %s unavailable: %s", request.method, request.path, which, mask(str(exc)))
            message = f"{which} did not answer: {mask(str(exc))}; this page retries every {REFRESH_SECONDS}s"
            return self.problem(request, 503, message, refresh=REFRESH_SECONDS)

    @staticmethod
    def refused(code: int) -> web.Response:
        text = (
            "401: this dashboard requires a token: open the URL `bootstrap dashboard` printed"
            if code == 401
            else "403: wrong token"
        )
        headers = {**HEADERS, "WWW-Authenticate": "Bearer"} if code == 401 else HEADERS
        return web.Response(text=text, status=code, headers=headers)

    def checked_post(self, request: web.Request, form: Any) -> web.Response | None:
        """None when the POST comes from our own page (CSRF token and Origin), else the refusal."""
        if not same_origin(request.headers.get("Origin"), request.host):
            why = "this form was not sent from the dashboard's own page"
        elif not self.guard.csrf_ok(request.get(SESSION), form.get("csrf")):
            why = "the form's CSRF token is missing or stale; reload the page"
        else:
            return None
        log.warning("dashboard: refused %s %s from %s: %s", request.method, request.path, request.remote, why)
        return self.problem(request, 403, f"refused: {why}")

    def queue_keys(self, request: web.Request) -> QueueKeys | web.Response:
        """The keys of the queue the URL names, or the 404 page when the spec has no such queue."""
        spec = self.sources.spec()
        name = request.match_info["queue"]
        if name not in {q.name for q in spec.queues}:
            return self.problem(request, 404, f"no queue named '{name}' in the spec")
        return QueueKeys(spec.redis.key_prefix, name)

    async def action(self, request: web.Request) -> tuple[QueueKeys, Any] | web.Response:
        """The queue and the form of an action (retry, purge), or the page refusing it."""
        keys = self.queue_keys(request)
        if isinstance(keys, web.Response):
            return keys
        form = await request.post()
        refused = self.checked_post(request, form)
        return (keys, form) if refused is None else refused

    # --- pages ----------------------------------------------------------------------------------

    async def home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/queues")

    async def queues(self, request: web.Request) -> web.Response:
        spec = self.sources.spec()
        views = await asyncio.to_thread(data.queues, self.sources.redis, spec)
        expected = await asyncio.to_thread(data.expected_wiring, spec, True)
        return self.page(
            request, "queues.html", title="Queues", queues=views, wiring=expected, refresh=REFRESH_SECONDS,
            chart=charts.throughput_svg, seen_within=admin.WORKER_SEEN_WITHIN,
        )  # fmt: skip

    async def failed(self, request: web.Request) -> web.Response:
        keys = self.queue_keys(request)
        if isinstance(keys, web.Response):
            return keys
        try:
            number = int(request.query.get("page", "1"))
        except ValueError:
            number = 1
        page = await asyncio.to_thread(data.failed_page, self.sources.redis, keys, number)
        return self.page(
            request, "failed.html", title=f"Failed jobs: {keys.queue}", queue=keys.queue, failed=page,
            retried=request.query.get("retried"), purged=request.query.get("purged"), refresh=REFRESH_SECONDS,
        )  # fmt: skip

    async def retry(self, request: web.Request) -> web.Response:
        checked = await self.action(request)
        if isinstance(checked, web.Response):
            return checked
        keys, form = checked
        client = self.sources.redis
        if form.get("all"):
            ids = await asyncio.to_thread(admin.all_failed_ids, client, keys)
        else:
            ids = [str(v) for v in form.getall("id", [])]
        done = await asyncio.to_thread(admin.retry_failed, client, keys, ids)
        log.info("dashboard: %s re-enqueued %d failed job(s) on %s: %s", request.remote, len(done), keys.queue,
                 ", ".join(done[:20]) + (" ..." if len(done) > 20 else ""))  # fmt: skip
        raise web.HTTPSeeOther(f"/queues/{keys.queue}/failed?retried={len(done)}")

    async def purge_confirm(self, request: web.Request) -> web.Response:
        keys = self.queue_keys(request)
        if isinstance(keys, web.Response):
            return keys
        count = await asyncio.to_thread(self.sources.redis.zcard, keys.records("failed"))
        return self.page(request, "purge.html", title=f"Purge failed jobs: {keys.queue}", queue=keys.queue,
                         count=int(count))

    async def purge(self, request: web.Request) -> web.Response:
        checked = await self.action(request)
        if isinstance(checked, web.Response):
            return checked
        keys, form = checked
        if form.get("confirm") != "yes":
            raise web.HTTPSeeOther(f"/queues/{keys.queue}/failed/purge")  # the confirmation step
        count = await asyncio.to_thread(admin.purge_failed, self.sources.redis, keys)
        log.info("dashboard: %s purged %d failed job record(s) of %s", request.remote, count, keys.queue)
        raise web.HTTPSeeOther(f"/queues/{keys.queue}/failed?purged={count}")

    async def schedules(self, request: web.Request) -> web.Response:
        spec = self.sources.spec()
        now = time.time()
        views = await asyncio.to_thread(data.schedules, self.sources.redis, spec, now)
        schedulers = await asyncio.to_thread(admin.schedulers, self.sources.redis, spec, now)
        expected = await asyncio.to_thread(data.expected_wiring, spec)
        chart = charts.timeline_svg([(v.id, v.slots) for v in views], now)
        return self.page(request, "schedules.html", title="Schedules", schedules=views, timeline=chart,
                         schedulers=schedulers, wiring=expected, seen_within=admin.WORKER_SEEN_WITHIN,
                         refresh=REFRESH_SECONDS)  # fmt: skip

    async def collections(self, request: web.Request) -> web.Response:
        spec = self.sources.spec()
        page = await asyncio.to_thread(data.collections, spec, self.sources.db, self.sources.redis)
        return self.page(request, "collections.html", title="Collections", info=page)

    async def spec_picture(self, request: web.Request) -> web.Response:
        d = erd.diagram(self.sources.spec())
        return self.page(request, "spec.html", title="Spec", picture=erd.svg(d), mermaid=erd.mermaid(d), diagram=d)


def make_app(sources: Sources, guard: Guard) -> web.Application:
    dashboard = Dashboard(sources, guard)
    app = web.Application(middlewares=[dashboard.authenticate, dashboard.unavailable])
    app.add_routes(
        [
            web.get("/", dashboard.home),
            web.get("/queues", dashboard.queues),
            web.get("/queues/{queue}/failed", dashboard.failed),
            web.post("/queues/{queue}/failed/retry", dashboard.retry),
            web.get("/queues/{queue}/failed/purge", dashboard.purge_confirm),
            web.post("/queues/{queue}/failed/purge", dashboard.purge),
            web.get("/schedules", dashboard.schedules),
            web.get("/collections", dashboard.collections),
            web.get("/spec", dashboard.spec_picture),
        ]
    )
    return app
