"""Keep secrets out of messages and logs: a URL is shown without its credentials.

Personal download links carry their secret in the query string (Mapillary's signed links:
``?Expires=…&Signature=…&Key-Pair-Id=…``) or in the user info (``https://user:password@host``).
Every URL that reaches a message or a log line goes through :func:`redact_url`, which keeps the
scheme, host and path (enough to tell which server and file failed) and hides the rest.
"""

from __future__ import annotations

import re
import urllib.parse

REDACTED = "<redacted>"
# a URL, with the marker of an earlier redaction if it has one (so redacting twice is a no-op)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+(?:" + re.escape(REDACTED) + ")?")


def redact_url(url: str) -> str:
    """``url`` with its user info, query string and fragment replaced by ``<redacted>``."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    return urllib.parse.urlunsplit(
        (
            parts.scheme,
            netloc,
            parts.path,
            REDACTED if parts.query else "",
            REDACTED if parts.fragment else "",
        )
    )


def redact(text: str) -> str:
    """``text`` with every URL in it redacted (see :func:`redact_url`)."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def host(url: str) -> str:
    """The host (and port) of ``url``, without any user info."""
    return urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
