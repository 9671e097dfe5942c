"""Keep credentials out of every line the tool prints or logs.

URLs are parsed, not matched by a character class: a password may hold any character a user can put
in a connection string (`'`, `"`, `<`, `>`, spaces, `@`, `/`, even `://`), so the userinfo of a URL
is everything from its `scheme://` to the last `@` that is followed by a host, on the same line and
before the next URL. That masks generously (a later `@host` on the line widens what is hidden) and
never shows a password.
"""

from __future__ import annotations

import re
from typing import Any

_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
# What may stand just before a URL that starts here (so `ab://` inside a password is not a new URL).
_URL_START_AFTER = frozenset(" \t\r\n'\"`<>()[]{},;=|-")
# `@` then a host (name, IPv4 or [IPv6], or none: redis-py then connects to localhost) and an
# optional port, then the end of the authority.
_HOST = re.compile(r"@(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)?(:[0-9]+)?(?=[/?#,\s'\"<>()\[\]{};|]|$)")
# Options that carry a secret, by name: `password=...` and its kin, pymongo's client certificate key
# password, and MONGODB-AWS's session token (`authMechanismProperties=AWS_SESSION_TOKEN:...`, whose
# value ends at the next property's `,`).
_QUERY_SECRET = re.compile(
    r"(?i)\b(password|passwd|pass|pwd|secret|token|tlsCertificateKeyFilePassword)(=)([^&\s'\"]+)"
)
_SESSION_TOKEN = re.compile(r"(?i)\b(AWS_SESSION_TOKEN)(:)([^&,\s'\"]+)")


def _url_starts(text: str) -> list[tuple[int, int]]:
    """(start, end) of each `scheme://` that begins a URL. Found from each `://` back to the start
    of its scheme: a regular expression tried at every position would be quadratic in a long run of
    letters (a failed job's error can hold megabytes of them)."""
    found: list[tuple[int, int]] = []
    colon = text.find("://")
    while colon != -1:
        start = colon
        while start > 0 and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        while start < colon and not ("a" <= text[start].lower() <= "z"):  # a scheme begins with a letter
            start += 1
        if start < colon and (start == 0 or text[start - 1] in _URL_START_AFTER):
            found.append((start, colon + 3))
        colon = text.find("://", colon + 3)
    return found


def _mask_urls(text: str) -> str:
    starts = _url_starts(text)
    if not starts:
        return text
    out: list[str] = []
    done = 0
    for i, (_, begin) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        newline = text.find("\n", begin, end)  # searched up to the next URL only: linear in the text
        if newline != -1:
            end = newline
        segment = text[begin:end]
        at = _last_host_at(segment)
        if at is None:
            continue
        userinfo = segment[:at]
        if not userinfo.partition(":")[2]:
            continue  # a user name alone (or with an empty password) is no secret
        out.append(text[done:begin])
        out.append(userinfo.split(":", 1)[0] + ":****")
        done = begin + at
    out.append(text[done:])
    return "".join(out)


def _last_host_at(segment: str) -> int | None:
    """The position of the `@` that ends the userinfo: the last one followed by a host."""
    at = segment.rfind("@")
    while at != -1:
        if _HOST.match(segment, at):
            return at
        at = segment.rfind("@", 0, at)
    return None


def mask(text: str) -> str:
    """`text` with the password of every URL in it, and `password=...` options, replaced by ****."""
    masked = _QUERY_SECRET.sub(_hidden, _mask_urls(text))
    return _SESSION_TOKEN.sub(_hidden, masked) if "AWS_SESSION_TOKEN" in masked.upper() else masked


# What a mistyped connection string may start with: a scheme missing a slash or its colon
# (`mongodb:/`, `redis//`, `mongodb+srv//`).
_BROKEN_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*(?::/+|/+)")


def mask_value(value: str) -> str:
    """A config value quoted whole in a message: `mask`, and the password of a connection string
    whose scheme is mistyped or missing (`mongodb:/u:p@h`, `redis//:p@h`, `u:p@h`), which `mask` does
    not take for a URL: everything from the first `:` after the user name to the last `@`."""
    masked = mask(value)
    at = value.rfind("@")
    if masked != value or at == -1:
        return masked
    prefix = _BROKEN_SCHEME.match(value)
    start = prefix.end() if prefix else 0
    colon = value.find(":", start, at)
    if colon == -1:
        return value  # a user name alone (`a@b.io`)
    return f"{value[: colon + 1]}****{value[at:]}"


def _hidden(match: re.Match[str]) -> str:
    return f"{match.group(1)}{match.group(2)}****"


def mask_data(data: Any) -> Any:
    """`data` (JSON-like: dicts, lists, strings) with every string masked, before it is written as
    JSON: escaped, a newline that ends a URL is `\\n`, which `mask` does not see as its end."""
    if isinstance(data, str):
        return mask(data)
    if isinstance(data, dict):
        return {key: mask_data(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [mask_data(value) for value in data]
    return data


def has_password(url: str) -> bool:
    """Whether `url` (or text holding URLs) carries a password."""
    return mask(url) != url
