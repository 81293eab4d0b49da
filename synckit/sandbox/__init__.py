"""A local Contacts API: the whole HTTP contract on loopback, for tests, notebooks and demos.

Example:
    >>> import requests
    >>> from synckit.sandbox import serve_sandbox
    >>> with serve_sandbox() as sb:
    ...     r = requests.post(sb.url + "/contacts", json={"email": "Ada@Example.com"},
    ...                       headers={"Authorization": f"Bearer {sb.token}"})
    ...     stored = sb.contacts()
    >>> r.status_code, stored[0]["email"]
    (201, 'ada@example.com')
"""

from __future__ import annotations

from synckit.sandbox.config import RequestRecord, SandboxConfig
from synckit.sandbox.server import Sandbox, SandboxServer, serve_sandbox

__all__ = ["RequestRecord", "Sandbox", "SandboxConfig", "SandboxServer", "serve_sandbox"]
