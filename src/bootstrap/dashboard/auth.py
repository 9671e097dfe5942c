"""Who may use the dashboard, and proof that a POST comes from its own pages.

Bound to 127.0.0.1 (the default) it needs no token: only this machine can reach it (and only
requests naming a loopback host are answered, against DNS rebinding). Bound to any
other address it requires one: generated at start (or BOOTSTRAP_DASHBOARD_TOKEN), printed once in
the URL to open, masked everywhere else. The browser sends it once as `?token=`; the dashboard then
sets it as an HttpOnly, SameSite=Strict cookie and redirects to the same page without it, so it
stays out of the address bar and history. Scripts may send `Authorization: Bearer TOKEN`.
A request with no token gets 401, one with a wrong token 403.

Every form carries a CSRF token (an HMAC of a per-process secret and the session's token), checked
with the Origin header on every POST.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from dataclasses import dataclass, field

from bootstrap.errors import BootstrapError

TOKEN_ENV = "BOOTSTRAP_DASHBOARD_TOKEN"
COOKIE = "bootstrap_dashboard"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MIN_TOKEN = 16  # characters of a token chosen in BOOTSTRAP_DASHBOARD_TOKEN


def needs_token(host: str) -> bool:
    """Any address but the loopback one is reachable from elsewhere."""
    if host in LOCAL_HOSTS:
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return True


def loopback_host(host_header: str | None) -> bool:
    """Whether a request's Host header names this machine's loopback address. Without a token the
    dashboard answers only those: a web page whose own host name an attacker points at 127.0.0.1
    (DNS rebinding) sends its own name, and is refused."""
    if not host_header:
        return False
    host = host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    return not needs_token(host)


def new_token() -> str:
    """BOOTSTRAP_DASHBOARD_TOKEN, or a new random one. A chosen token must not be guessable: the
    dashboard it guards can retry and purge jobs from any machine that reaches it."""
    chosen = os.environ.get(TOKEN_ENV)
    if not chosen:
        return secrets.token_urlsafe(24)  # 32 characters
    if len(chosen) < MIN_TOKEN:
        raise BootstrapError(
            f"{TOKEN_ENV} has {len(chosen)} character(s); a dashboard other machines can reach needs at "
            f"least {MIN_TOKEN} (unset it for a random one, or make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`)"
        )
    return chosen


def masked(token: str) -> str:
    """What logs and later output show of a token."""
    return token[:4] + "****" if len(token) > 8 else "****"


@dataclass
class Guard:
    token: str | None  # None: no token required (loopback)
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def check(self, presented: str | None) -> int:
        """200 when `presented` may pass, 401 when there is none, 403 when it is wrong."""
        if self.token is None:
            return 200
        if not presented:
            return 401
        return 200 if hmac.compare_digest(presented.encode(), self.token.encode()) else 403

    def csrf(self, session: str | None) -> str:
        """The CSRF token for forms shown to `session` (the token it authenticated with, or none)."""
        return hmac.new(self.secret, (session or "-").encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: str | None, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf(session), str(presented))


def same_origin(origin: str | None, host: str | None) -> bool:
    """A POST's Origin header, when the browser sends one, names the dashboard's own host."""
    if not origin:
        return True  # old browsers and scripts: the CSRF token alone decides
    if origin == "null" or not host:
        return False
    return origin.split("://", 1)[-1] == host
