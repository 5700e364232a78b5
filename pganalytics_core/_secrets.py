"""The client's secrets: URL credentials and the API key, and scrubbing them from text.

A secret must never reach a message, a repr or a log line. The client's secrets are the
API key, the password of URL credentials and the Basic header built from them; the
server's answers (error bodies, header values, JSON strings, the text of httpx's
exceptions) may echo any of them, in any letter case, so everything taken from a response
passes through a :class:`Scrubber` first. No I/O here.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Final

import httpx

from pganalytics_core._validation import check_type
from pganalytics_core.errors import BODY_EXCERPT_CHARS, ConfigError, trim_body

__all__ = [
    "ERROR_BODY_BYTES",
    "Scrubber",
    "authorization",
    "normalise_base_url",
    "redact_authorization",
    "scrub_json",
    "without_secret_tail",
]

#: How much of an error body is read (errors keep a 200-character excerpt of it); the
#: client reads the length of its longest secret more, to scrub a secret straddling it.
ERROR_BODY_BYTES: Final = 4096

#: The shortest trailing fragment of a secret that is dropped from an excerpt.
_MIN_SECRET_FRAGMENT: Final = 4

_REDACTED: Final = "[redacted]"


def normalise_base_url(base_url: str | httpx.URL) -> tuple[httpx.URL, str | None, str]:
    """Return the base URL without credentials, its Basic header (or None) and password.

    Raises:
        ConfigError: not an absolute http(s) URL, or one with a query or a fragment (the
            message never quotes the URL, which may hold a password).
    """
    try:
        url: httpx.URL | None = httpx.URL(base_url)
    except httpx.InvalidURL:  # its message may quote the URL: not kept as a __context__
        url = None
    if url is None:
        raise ConfigError("base_url", "is not a valid URL")
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError("base_url", "must be an absolute http:// or https:// URL")
    if url.query or url.fragment:
        raise ConfigError("base_url", "must not have a query or a fragment")
    basic: str | None = None
    password = ""
    if url.userinfo:
        password = url.password or ""
        token = base64.b64encode(f"{url.username}:{password}".encode()).decode("ascii")
        basic = f"Basic {token}"
        url = url.copy_with(username=None, password=None)
    return url.copy_with(path=url.path.rstrip("/") or "/"), basic, password


def authorization(api_key: str | None, basic: str | None) -> str | None:
    """The ``Authorization`` header of a client: its API key's, its URL's, or None.

    Raises:
        TypeError: an API key that is not a str.
        ConfigError: a malformed key, or a key and URL credentials both.
    """
    if api_key is None:
        return basic
    check_type("api_key", api_key, str)
    # Never echo the key: it must not end up in a message or a log line.
    if (
        not api_key
        or not api_key.isascii()
        or not api_key.isprintable()
        or api_key != api_key.strip()
    ):
        raise ConfigError("api_key", "must be non-empty printable ASCII without spaces around it")
    if basic is not None:
        raise ConfigError("base_url", "holds credentials; pass api_key or credentials, not both")
    return f"Bearer {api_key}"


def scrub_json(value: object, scrub: Callable[[str], str]) -> object:
    """Return decoded JSON with every string (keys too) passed through ``scrub``.

    Raises:
        RecursionError: nested too deeply.
    """
    if type(value) is str:
        return scrub(value)
    if type(value) is dict:
        return {scrub(key): scrub_json(item, scrub) for key, item in value.items()}
    if type(value) is list:
        return [scrub_json(item, scrub) for item in value]
    return value


def without_secret_tail(text: str, secrets: tuple[str, ...]) -> str:
    """Drop a trailing fragment of a secret (4 characters or more) left by a cut.

    Whole secrets are scrubbed before; only a secret cut by the end of the bytes read,
    or by the excerpt's trimming, can survive in part, and only at the end of the text.
    """
    suffix = ""
    if text.endswith("..."):
        text, suffix = text[:-3], "..."
    stripped = text.rstrip("\ufffd")  # a character cut in the middle of its bytes
    folded = stripped.lower()
    cut = 0
    for secret in secrets:
        for n in range(min(len(secret), len(stripped)), max(cut, _MIN_SECRET_FRAGMENT - 1), -1):
            if folded.endswith(secret[:n].lower()):
                cut = n
                break
    if not cut:
        return text + suffix
    return stripped[:-cut].rstrip() + suffix


def redact_authorization(exc: httpx.HTTPError, request: httpx.Request) -> None:
    """Blank the Authorization header of the requests an httpx exception can reach.

    The request has been sent by now; the exception, chained as ``__cause__`` of the
    client's error, may be logged with its request or kept by an error tracker.
    """
    request.headers["Authorization"] = _REDACTED
    try:
        attached = exc.request
    except RuntimeError:  # no request attached
        return
    if attached is not request and "authorization" in attached.headers:
        attached.headers["Authorization"] = _REDACTED


class Scrubber:
    """Removes one client's secrets from text a server sent (in any letter case).

    Args:
        api_key: the client's API key, or None.
        password: the password of the base URL's credentials ("" when none).
        basic: the Basic ``Authorization`` header built from them, or None.
    """

    __slots__ = ("_fragment_secrets", "_secret_re", "_secrets", "excerpt_bytes")

    def __init__(self, api_key: str | None, password: str, basic: str | None) -> None:
        # Longest first, so "Basic <token>" goes as a whole before its token would.
        secrets = {api_key or "", password}
        if basic is not None:
            secrets.update((basic, basic.removeprefix("Basic ")))
        self._secrets = tuple(sorted(filter(None, secrets), key=len, reverse=True))
        # A cut "Basic <token>" is caught by its token; "Basic" alone is no secret.
        self._fragment_secrets = tuple(secret for secret in self._secrets if secret != basic)
        # Case-insensitive: a server may echo a header lowercased (as Content-Encoding is).
        self._secret_re = (
            re.compile("|".join(map(re.escape, self._secrets)), re.IGNORECASE)
            if self._secrets
            else None
        )
        longest = max((len(secret.encode()) for secret in self._secrets), default=0)
        #: How many bytes of an error body to read: its excerpt, and a secret across it.
        self.excerpt_bytes = ERROR_BODY_BYTES + longest

    @property
    def active(self) -> bool:
        """True when the client has a secret to scrub."""
        return self._secret_re is not None

    def scrub(self, text: str) -> str:
        """Replace every secret in ``text`` (in any case) by ``***``."""
        secret_re = self._secret_re
        return text if secret_re is None else secret_re.sub("***", text)

    def may_hold_secret(self, text: str) -> bool:
        """Tell whether decoded JSON of ``text`` may spell a secret (an escape could)."""
        secret_re = self._secret_re
        return secret_re is not None and ("\\" in text or secret_re.search(text) is not None)

    def text(self, text: str, limit: int = BODY_EXCERPT_CHARS) -> str:
        """A printable excerpt of text a server sent, scrubbed.

        Scrubbed before trimming; what a cut left of a secret at the end is dropped.
        """
        if self._secret_re is None:
            return trim_body(text, limit)
        return without_secret_tail(trim_body(self.scrub(text), limit), self._fragment_secrets)

    def excerpt(self, body: bytes) -> str:
        """The scrubbed excerpt of an error body's first bytes."""
        return self.text(body[: self.excerpt_bytes].decode("utf-8", "replace"))

    def scrub_exception_chain(self, exc: BaseException) -> None:
        """Scrub the text arguments of ``exc`` and of every exception chained to it.

        httpx's exceptions (chained as the ``__cause__`` of the client's errors) carry
        httpcore's and h11's, whose messages may quote what the server sent.
        """
        scrub = self.scrub
        seen: set[int] = set()
        pending = [exc]
        while pending:
            current = pending.pop()
            if id(current) in seen:
                continue
            seen.add(id(current))
            current.args = tuple(
                scrub(arg)
                if isinstance(arg, str)
                else scrub(arg.decode("latin-1")).encode("latin-1")
                if isinstance(arg, bytes)
                else arg
                for arg in current.args
            )
            for linked in (current.__cause__, current.__context__):
                if linked is not None:
                    pending.append(linked)
