"""A local Contacts API: the whole HTTP contract on loopback, for tests, notebooks and demos.

``serve_sandbox()`` runs it in a background thread on a free port;
``synckit sandbox`` runs it in the foreground (port 8765 by default).

Example:
    >>> import requests
    >>> from synckit.sandbox import serve_sandbox
    >>> with serve_sandbox() as sb:
    ...     r = requests.post(sb.url + "/contacts", json={"email": "Ada@Example.com"},
    ...                       headers={"Authorization": f"Bearer {sb.token}"})
    ...     stored = sb.contacts()
    >>> r.status_code, stored[0]["email"]
    (201, 'ada@example.com')

Where the contract leaves a choice, the sandbox does this:

* **Rate limit**: fixed one-second windows shared by all clients; refused
  requests do not count. Any one-second span can therefore see up to twice
  the limit (the end of one window and the start of the next), and ``T``
  seconds at most ``limit * (ceil(T) + 1)``. It applies after authentication
  and scope, to every endpoint including ``/oauth/token`` (after the client
  credentials check). ``X-RateLimit-Reset`` and ``Retry-After`` are the
  seconds left in the current window, with millisecond precision.
* **Idempotency**: keys are scoped by credential owner (the OAuth client id
  for its access tokens, so a renewed token still replays; otherwise the
  token itself). The first completed answer below 500 is kept 24 h (the
  newest 200,000 keys) and replayed with ``Idempotent-Replayed: true``,
  errors included; a request
  answered by an injected fault stores nothing, so its retry runs afresh.
* **Organisations**: every credential belongs to one. The static token and
  the OAuth client belong to ``"org_demo"``; ``Sandbox.add_token(...,
  org="acme")`` adds one for another. A caller lists, looks up, conflicts
  with and counts against the quota only its organisation's contacts; a
  GET/PATCH/DELETE of another organisation's contact id answers ``403
  forbidden`` (an id no organisation holds stays ``404``). Ids are unique
  across organisations; email and phone number per organisation. A ``--db``
  file written before organisations existed is upgraded on open: its
  contacts join ``"org_demo"``.
* **Faults** apply to ``/contacts`` endpoints only, never to ``/oauth/token``.
  ``latency_ms`` sleeps after the idempotency check, which is what makes a
  concurrent repeat see ``409 request_in_progress``. ``fail_rate`` answers
  ``500 internal_error`` or ``503 unavailable`` (half the 503s carry
  ``Retry-After: 0.100``) before any work. ``drop_rate`` only hits writes
  that succeeded (2xx): the change is committed and its idempotent answer
  stored, then the connection closes without a byte of answer.
* **Empty identifiers**: ``""`` counts as absent (the contract's "present and
  non-empty"), so it is stored as ``null`` and never conflicts.
* **custom_fields**: keys sent as ``null`` are dropped on create as well as
  on update, so a stored contact never holds a null custom value.
* **Bad input**: bodies over 1 MiB get ``413 payload_too_large``; a body that
  is not a JSON object, or a non-JSON content type, gets ``400 bad_request``;
  list parameters out of range get ``validation_failed`` (422, or 400 in the
  platform envelope). ``/oauth/token`` wants a form-encoded body.
* **Connections** stay open between requests (HTTP/1.1 keep-alive, with
  ``TCP_NODELAY``); chunked or oversized uploads are answered, then closed.
"""

from __future__ import annotations

from synckit.sandbox.config import RequestRecord, SandboxConfig
from synckit.sandbox.server import Sandbox, SandboxServer, serve_sandbox

__all__ = ["RequestRecord", "Sandbox", "SandboxConfig", "SandboxServer", "serve_sandbox"]
