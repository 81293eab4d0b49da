"""Credentials that never turn into output: a wrapper that is not text, and masking by value.

Two defences, because either alone leaks:

- :class:`Secret` holds a token or client secret without being a ``str``.
  Its ``repr``, ``str`` and ``format`` are ``***``; it cannot be sliced,
  concatenated or joined (a ``TypeError``, not a leak), so a traceback that
  prints local variables -- ``rich`` with ``show_locals`` cuts long strings
  by slicing them -- has nothing to print. :meth:`Secret.reveal` is the one
  way to the value, used only where a request is assembled.
- Every secret value a client holds (static token, client secret, each
  access token) is *registered*, and :func:`redact` -- used for log lines,
  exception messages, error details and report messages -- masks each one
  wherever it appears, also URL-encoded, JSON-escaped, ``repr``-escaped or
  HTML-escaped. A server that echoes the token in its error message does not
  get it printed. Patterns then catch credentials synckit never held:
  ``Authorization`` headers of any scheme, ``Bearer``/``Basic`` credentials,
  ``user:password@`` in URLs and ``key=value`` / ``"key": "value"`` pairs whose
  key names a secret (``token``, ``client_secret``, ``password``, ``api_key``,
  ``signature``, ``sig``, ``key``...), plain, quoted, URL-encoded or escaped.

The registry is process-wide (log handlers are too) and keeps the most recent
:data:`MAX_REGISTERED` values. Values shorter than :data:`MIN_LENGTH`
characters are not masked by value: they would mask ordinary words.

Example:
    >>> s = Secret("sk_live_" + "x" * 200)
    >>> repr(s), f"{s}", str(s)
    ("Secret('***')", '***', '***')
    >>> redact("the token " + s.reveal() + " was revoked")
    'the token [REDACTED] was revoked'
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import json
import re
import threading
from typing import Any, Final
from urllib.parse import quote, quote_plus

__all__ = [
    "MASK",
    "MAX_REGISTERED",
    "MIN_LENGTH",
    "Secret",
    "is_loopback_host",
    "redact",
    "redact_data",
    "register",
]

#: What a masked value is replaced with.
MASK: Final = "[REDACTED]"
#: Shorter values are not masked by value (they would mask ordinary words).
MIN_LENGTH: Final = 8
#: How many registered values are kept (the oldest go first; access tokens renew).
MAX_REGISTERED: Final = 256

_lock = threading.Lock()
_registered: dict[str, None] = {}  # insertion-ordered set
_by_value: re.Pattern[str] | None = None


class Secret:
    """A credential that is not a ``str``: it prints as ``***`` and cannot be sliced or joined.

    Creating one registers its value for :func:`redact`. Equality compares
    values in constant time; the hash is not derived from the value.

    Example:
        >>> s = Secret("cs_prod_S3cr3t_value")
        >>> (repr(s), "%s" % s, s == Secret("cs_prod_S3cr3t_value"), s.reveal()[:3])
        ("Secret('***')", '***', True, 'cs_')
        >>> s[:5]
        Traceback (most recent call last):
        ...
        TypeError: 'Secret' object is not subscriptable
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a secret must be a str, not {type(value).__name__}")
        self._value = value
        register(value)

    def reveal(self) -> str:
        """The value itself: only for the line that puts it on the wire."""
        return self._value

    def header_problem(self) -> str | None:
        """Why the value cannot travel in an HTTP header, or None when it can.

        HTTP header values are Latin-1 without control characters; anything
        else would fail inside ``http.client`` on every request. The answer
        names the position and kind of character, never the value.

        Example:
            >>> Secret("tok\\u20acen_value").header_problem()
            'character 4 is not Latin-1 (U+20AC)'
        """
        for i, ch in enumerate(self._value, 1):
            if ord(ch) > 0xFF:
                return f"character {i} is not Latin-1 (U+{ord(ch):04X})"
            if ord(ch) < 0x20 or ord(ch) == 0x7F:
                return f"character {i} is a control character (U+{ord(ch):04X})"
        if self._value != self._value.strip():
            return "it starts or ends with whitespace"
        return None

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return id(type(self))  # all secrets share one bucket: the hash tells nothing

    def __reduce__(self) -> Any:
        # A pickled client or token would carry the value to disk or another process.
        raise TypeError("a Secret cannot be pickled")


def _forms(value: str) -> set[str]:
    """The ways ``value`` shows up in text: as is, URL-encoded, JSON/repr/HTML-escaped."""
    forms = {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        json.dumps(value)[1:-1].replace("/", "\\/"),
        repr(value)[1:-1],
        html.escape(value),
        html.escape(value, quote=False),
    }
    return {f for f in forms if f}


_PERCENT = re.compile(r"%([0-9A-F])([0-9A-F])")


def _literal(form: str) -> str:
    # Percent-encodings are case-insensitive: %2F and %2f are the same byte.
    escaped = re.escape(form)
    return _PERCENT.sub(
        lambda m: "%" + "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in m.groups()),
        escaped,
    )


def register(value: str) -> None:
    """Mask ``value`` (and its encoded forms) in everything :func:`redact` sees from now on.

    Example:
        >>> register("abc/def+ghi==jkl")
        >>> redact("url?t=abc%2Fdef%2Bghi%3D%3Djkl")
        'url?t=[REDACTED]'
    """
    global _by_value
    if not isinstance(value, str) or len(value) < MIN_LENGTH:
        return
    with _lock:
        if value in _registered:
            return
        _registered[value] = None
        while len(_registered) > MAX_REGISTERED:
            del _registered[next(iter(_registered))]
        forms = {f for v in _registered for f in _forms(v)}
        # Longest first, so that a value is never masked only in part.
        alternatives = sorted(forms, key=lambda f: (-len(f), f))
        _by_value = re.compile("|".join(_literal(f) for f in alternatives))


# --------------------------------------------------------------------------- patterns

_NAMES: Final = (
    r"[\w-]*(?:secret|token|password|passwd|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|signature|credential)[\w-]*|key|sig"
)
# "Authorization: <scheme> <credentials>" of any scheme (also Proxy-Authorization),
# in a header dump, a dict repr, JSON (escaped or not) or a query string.
_AUTH_HEADER: Final = re.compile(
    r"(?i)(?P<head>\bauthorization(?:\\?[\"'])?\s*(?:[:=]|%3A|%3D)\s*)"
    r"(?:(?P<q>\\?[\"'])(?P<quoted>.*?)(?P=q)|(?P<bare>[^\r\n]+))"
)
# A scheme name is letters only (Bearer, Basic, Token, Digest, ApiKey, SSWS...): a bare
# token (sk_live_..., digits, dashes) followed by more text must not pass for one.
_SCHEME: Final = re.compile(r"^([A-Za-z]{2,20})(\s+)(?=\S)")
_PATTERNS: Final = (
    # Bearer / Basic credentials outside a header name (e.g. "sent Bearer abc").
    # ("the bearer token is missing": the word "token" after it is prose, not a credential.)
    re.compile(r"(?i)(\b(?:bearer|basic)\s+)(?!\[REDACTED\]|token\b)[^\s\"',;]+"),
    # user:password@ in a URL
    re.compile(r"(?i)(://[^:/@\s]+:)[^@\s]+(?=@)"),
)
# key=value, key: value, "key": "value", key%3Dvalue, \"key\":\"value\" for secret-looking keys.
_KEY_VALUE: Final = re.compile(
    r"(?i)(?P<head>(?:(?<![\w-])|(?<=%2[27]))(?P<name>" + _NAMES + r")"
    r"(?:\\?[\"']|%2[27])?\s*(?:[:=]|%3[AD])\s*)"
    r"(?P<value>\\\"(?:(?!\\\").)*\\\"|\"(?:[^\"\\]|\\.)*\"|'[^']*'"
    r"|(?:%(?!26)[0-9A-F]{2}|[^\s\"'&,;}%])+)"
)


# Every pattern below needs one of these words; text without any skips them all
# (substring tests in C: far cheaper than running the patterns, or one alternation).
_HINTS: Final = (
    "secret", "token", "passw", "key", "sig", "credential", "authoriz", "bearer", "basic", "://"
)  # fmt: skip


def _mask_header(match: re.Match[str]) -> str:
    head = match.group("head")
    if match.group("q") is not None:
        quote_mark, value = match.group("q"), match.group("quoted")
    else:
        quote_mark, value = "", match.group("bare")
    scheme = _SCHEME.match(value)
    shown = f"{scheme.group(1)}{scheme.group(2)}{MASK}" if scheme else MASK
    if value.strip() in (MASK, shown) or not value.strip():
        return match.group(0)
    return f"{head}{quote_mark}{shown}{quote_mark}"


def _mask_pair(match: re.Match[str]) -> str:
    name = match.group("name")
    if name.lower().endswith("_env"):
        return match.group(0)  # names the variable holding the secret, not the secret
    value = match.group("value")
    for q in ('\\"', '"', "'"):
        if len(value) >= 2 * len(q) and value.startswith(q) and value.endswith(q):
            inner = value[len(q) : -len(q)]
            if inner in ("", MASK):
                return match.group(0)
            return f"{match.group('head')}{q}{MASK}{q}"
    if value == MASK or value.lower() in ("bearer", "basic"):
        return match.group(0)
    return match.group("head") + MASK


def redact(text: str) -> str:
    """``text`` with every registered secret and anything that looks like a credential masked.

    Example:
        >>> redact("Authorization: Token abc123 ; client_secret%3Dx%21y&z=1")
        'Authorization: Token [REDACTED]'
        >>> redact('{"client_secret": "a b!c", "user": "ada"} api_key=k1 sig=s2')
        '{"client_secret": "[REDACTED]", "user": "ada"} api_key=[REDACTED] sig=[REDACTED]'
    """
    if not text:
        return text
    pattern = _by_value
    if pattern is not None:
        text = pattern.sub(MASK, text)
    lower = text.lower()
    if not any(hint in lower for hint in _HINTS):
        return text  # the common case (most messages name no credential): one cheap scan
    text = _AUTH_HEADER.sub(_mask_header, text)
    for regex in _PATTERNS:
        text = regex.sub(lambda m: m.group(1) + MASK, text)
    return _KEY_VALUE.sub(_mask_pair, text)


def redact_data(value: Any) -> Any:
    """``value`` with :func:`redact` applied to every string in it (dicts and lists deep).

    Example:
        >>> redact_data({"message": "token=abc", "n": [1, "password: x"]})
        {'message': 'token=[REDACTED]', 'n': [1, 'password: [REDACTED]']}
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_data(v) for v in value)
    return value


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ``::1``): traffic that
    never leaves the machine, where plain HTTP exposes no credential. ``0.0.0.0``, ``::``
    and an empty host mean every interface, so they are not loopback.

    Example:
        >>> [is_loopback_host(h) for h in ("127.0.0.1", "[::1]", "localhost", "0.0.0.0", "")]
        [True, True, True, False, False]
    """
    if not host:
        return False
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
