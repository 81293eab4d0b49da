"""synckit: contact lists from CSV files and DataFrames into the Contacts API.

Read, validate, sync, report -- each a library call::

    import synckit
    df = synckit.read_csv("contacts.csv", columns={"E-mail Address": "email"})
    check = synckit.validate(df)            # check.valid, check.errors
    with synckit.serve_sandbox() as sb:      # or synckit.Client.from_env()
        client = synckit.Client(sb.url, token=sb.token)
        report = synckit.upsert(check, client)
    report.rows, report.errors, report.summary()

Names are imported lazily, so ``import synckit`` stays cheap (the sandbox and
the HTTP stack load only when used).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# A library stays quiet unless the application configures logging (retry lines
# would otherwise reach stderr through Python's last-resort handler).
logging.getLogger("synckit").addHandler(logging.NullHandler())

_EXPORTS: dict[str, str] = {
    # io / validate
    "read_csv": "synckit.io",
    "validate": "synckit.validation",
    "Validation": "synckit.validation",
    # client
    "Client": "synckit.client",
    "CallInfo": "synckit.client",
    # sync / report
    "upsert": "synckit.sync",
    "SyncReport": "synckit.report",
    # sandbox
    "serve_sandbox": "synckit.sandbox",
    "SandboxConfig": "synckit.sandbox",
    # errors
    "SynckitError": "synckit.errors",
    "APIError": "synckit.errors",
    "AuthError": "synckit.errors",
    "PermissionDenied": "synckit.errors",
    "NotFound": "synckit.errors",
    "Conflict": "synckit.errors",
    "ValidationFailed": "synckit.errors",
    "BusinessRuleError": "synckit.errors",
    "RateLimited": "synckit.errors",
    "ServerError": "synckit.errors",
    "TransportError": "synckit.errors",
    "InputError": "synckit.errors",
    "ConfigError": "synckit.errors",
    "StateLockedError": "synckit.errors",
}

__all__ = [
    "APIError",
    "AuthError",
    "BusinessRuleError",
    "CallInfo",
    "Client",
    "ConfigError",
    "Conflict",
    "InputError",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "SandboxConfig",
    "ServerError",
    "StateLockedError",
    "SyncReport",
    "SynckitError",
    "TransportError",
    "Validation",
    "ValidationFailed",
    "__version__",
    "read_csv",
    "rules",
    "serve_sandbox",
    "upsert",
    "validate",
]

if TYPE_CHECKING:
    from synckit import rules
    from synckit.client import CallInfo, Client
    from synckit.errors import (
        APIError,
        AuthError,
        BusinessRuleError,
        ConfigError,
        Conflict,
        InputError,
        NotFound,
        PermissionDenied,
        RateLimited,
        ServerError,
        StateLockedError,
        SynckitError,
        TransportError,
        ValidationFailed,
    )
    from synckit.io import read_csv
    from synckit.report import SyncReport
    from synckit.sandbox import SandboxConfig, serve_sandbox
    from synckit.sync import upsert
    from synckit.validation import Validation, validate


def __getattr__(name: str) -> Any:
    if name == "rules":
        return importlib.import_module("synckit.rules")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'synckit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
