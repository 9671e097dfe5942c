"""Keep credentials out of every line the tool prints or logs."""

from __future__ import annotations

import re

# scheme://user:password@host  ->  scheme://user:****@host ; also masks `password=...` query options
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<pw>[^@/\s]*)@")
_QUERY_SECRET = re.compile(r"(?i)\b(password|pass|pwd|secret|token)=([^&\s]+)")


def mask(text: str) -> str:
    """`text` with any password in a URL replaced by ****."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:****@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}=****", text)


def mask_secrets(text: str, secrets: list[str]) -> str:
    """`mask(text)`, and also every literal secret (a password quoted back in a server error)."""
    text = mask(text)
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "****")
    return text
