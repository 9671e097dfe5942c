"""Keep credentials out of every line the tool prints or logs."""

from __future__ import annotations

import re

# `scheme://` then the longest run without whitespace or quotes that ends in "@": the userinfo of a
# URL, even when its password holds "@", "/" or ":" (parsers disagree there; we mask generously).
_AUTHORITY = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s'\"<>]*)@")
_QUERY_SECRET = re.compile(r"(?i)\b(password|passwd|pass|pwd|secret|token)=([^&\s'\"]+)")


def _mask_userinfo(match: re.Match[str]) -> str:
    userinfo = match["userinfo"]
    if ":" not in userinfo:
        return match.group(0)  # a user name alone is no secret
    user = userinfo.split(":", 1)[0]
    return f"{match['scheme']}{user}:****@"


def mask(text: str) -> str:
    """`text` with the password of every URL in it, and `password=...` options, replaced by ****."""
    return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}=****", _AUTHORITY.sub(_mask_userinfo, text))


def has_password(url: str) -> bool:
    """Whether `url` (or text holding URLs) carries a password."""
    return mask(url) != url
