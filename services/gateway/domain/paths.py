"""The one path the gateway checks, audits and forwards.

The route policy and the audit match a path; the upstream's server decodes the path it receives and an
HTTP client may remove dot segments on the way. If these saw different paths, `..%2F` could walk from an
open route into a closed one. So the path is checked once, on the raw bytes the client sent: anything
that could change its meaning after the check (a dot segment, raw or encoded; an encoded `/`, `\\` or
`%`; a backslash; an empty segment) is refused, and the upstream gets the decoded, checked path
re-encoded in one canonical way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

# percent-encodings of '.', '/', '\' and '%' (a double encoding), in either case
_ENCODED_SEPARATOR = re.compile(r"%(2e|2f|5c|25)", re.IGNORECASE)
SAFE = "/:@!$&'()*+,;=-._~"
MAX_PATH = 400  # every real route is far shorter; the audit column holds 500


class BadPath(ValueError):
    pass


@dataclass(frozen=True)
class RoutedPath:
    service: str
    path: str  # decoded, starting with "/": what the policy matches and the audit records
    encoded: str  # the same path, canonically percent-encoded: what the upstream receives


def routed_path(raw: str) -> RoutedPath:
    """`raw` is the request target's path as sent (`/api/{service}/...`, still percent-encoded)."""
    if len(raw) > MAX_PATH:
        raise BadPath(f"longer than {MAX_PATH} characters")
    if "\\" in raw or "//" in raw:
        raise BadPath("a backslash or an empty segment")
    if _ENCODED_SEPARATOR.search(raw):
        raise BadPath("an encoded '.', '/', '\\' or '%'")
    parts = raw.split("/")
    if len(parts) < 4 or parts[0] != "" or parts[1] != "api" or not parts[2]:
        raise BadPath("not /api/{service}/...")
    try:
        decoded = [unquote(p, errors="strict") for p in parts[3:]]
    except UnicodeDecodeError:
        raise BadPath("percent-encoding that is not UTF-8") from None
    if any(p in (".", "..") for p in decoded):
        raise BadPath("a dot segment")
    path = "/" + "/".join(decoded)
    return RoutedPath(unquote(parts[2]), path, quote(path, safe=SAFE))
