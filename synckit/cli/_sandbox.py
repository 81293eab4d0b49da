"""``synckit sandbox``: serve the Contacts API sandbox on loopback until Ctrl-C.

Credentials other than the published demo ones come from a file
(``--token-file``, ``--client-secret-file``) or the environment
(``SYNCKIT_SANDBOX_TOKEN``, ``SYNCKIT_SANDBOX_CLIENT_SECRET``), never from the
command line, where every user of the machine can read them with ``ps``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from synckit._secrets import is_loopback_host
from synckit.errors import ConfigError
from synckit.sandbox import SandboxConfig
from synckit.sandbox.server import SandboxServer

#: Environment variables the credentials are read from when no file is given.
TOKEN_ENV = "SYNCKIT_SANDBOX_TOKEN"
CLIENT_SECRET_ENV = "SYNCKIT_SANDBOX_CLIENT_SECRET"

_DEFAULTS = SandboxConfig()


def register(subparsers: Any) -> None:
    """Add the ``sandbox`` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox",
        help="serve a local Contacts API (the demo and test server)",
        description="Serve the Contacts API contract on loopback until Ctrl-C.",
    )
    p.add_argument("--host", default=_DEFAULTS.host, help="interface (default %(default)s)")
    p.add_argument(
        "--port",
        type=int,
        default=_DEFAULTS.port,
        help="port; 0 = any free port (default %(default)s)",
    )
    p.add_argument("--db", metavar="PATH", help="SQLite file that keeps contacts across restarts")
    p.add_argument(
        "--token-file", metavar="PATH",
        help=f"file holding the static API token (or set {TOKEN_ENV}; default: the demo token)",
    )  # fmt: skip
    p.add_argument("--client-id", default=_DEFAULTS.client_id, help="OAuth client id")
    p.add_argument(
        "--client-secret-file", metavar="PATH",
        help=f"file holding the OAuth client secret (or set {CLIENT_SECRET_ENV})",
    )  # fmt: skip
    # Deprecated: a value on the command line is visible to every user in `ps`.
    p.add_argument("--token", help=argparse.SUPPRESS)
    p.add_argument("--client-secret", help=argparse.SUPPRESS)
    p.add_argument(
        "--read-timeout", type=float, default=_DEFAULTS.read_timeout, metavar="SECONDS",
        help="close connections silent this long (default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--token-ttl", type=float, default=_DEFAULTS.token_ttl, metavar="SECONDS",
        help="OAuth token lifetime (default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--rate-limit", type=int, default=0, metavar="N", help="requests per second; 0 = unlimited"
    )
    p.add_argument("--latency", type=float, default=0.0, metavar="MS", help="added per request")
    p.add_argument(
        "--fail-rate", type=float, default=0.0, metavar="P", help="share answered 500/503"
    )
    p.add_argument(
        "--drop-rate", type=float, default=0.0, metavar="P",
        help="share of writes committed, then closed without an answer",
    )  # fmt: skip
    p.add_argument("--contact-limit", type=int, metavar="N", help="quota of contacts")
    p.add_argument(
        "--error-style", choices=("contacts", "platform"), default=_DEFAULTS.error_style,
        help="error envelope (default %(default)s)",
    )  # fmt: skip
    p.set_defaults(func=run)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _credential(
    value: str | None, file: str | None, env: str, default: str, flag: str
) -> tuple[str, str]:
    """The credential and where it came from: deprecated flag, file, environment, or demo."""
    if value is not None and file is not None:
        raise ConfigError(f"give --{flag}-file or --{flag}, not both")
    if value is not None:
        print(
            f"synckit sandbox: warning: --{flag} puts the value in the process list, where "
            f"every user of this machine can read it; use --{flag}-file PATH or {env} "
            f"(--{flag} will be removed)",
            file=sys.stderr,
        )
        return value, f"--{flag}"
    if file is not None:
        try:
            text = Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read --{flag}-file {file}: {exc.strerror}") from None
        if not text:
            raise ConfigError(f"--{flag}-file {file} is empty")
        return text, f"--{flag}-file"
    if os.environ.get(env):
        return os.environ[env], env
    return default, "demo"


def _shown(value: str, source: str) -> str:
    # The published demo credentials are printed so the demo works out of the box;
    # anything else may be real, so never echo it.
    return value if source == "demo" else f"(from {source})"


def run(args: argparse.Namespace) -> int:
    """Start the server, print where it is and how to authenticate, serve until Ctrl-C."""
    token, token_from = _credential(
        args.token, args.token_file, TOKEN_ENV, _DEFAULTS.token, "token"
    )
    secret, secret_from = _credential(
        args.client_secret,
        args.client_secret_file,
        CLIENT_SECRET_ENV,
        _DEFAULTS.client_secret,
        "client-secret",
    )
    config = SandboxConfig(
        host=args.host,
        port=args.port,
        db=args.db,
        token=token,
        client_id=args.client_id,
        client_secret=secret,
        read_timeout=args.read_timeout,
        token_ttl=args.token_ttl,
        rate_limit=args.rate_limit,
        latency_ms=args.latency,
        fail_rate=args.fail_rate,
        drop_rate=args.drop_rate,
        contact_limit=args.contact_limit,
        error_style=args.error_style,
    )
    server = SandboxServer(config)  # refuses the demo credentials beyond loopback
    if not is_loopback_host(config.host):
        print(
            f"synckit sandbox: warning: listening on {config.host or 'every interface'}: "
            "anyone who can reach this machine can call it, over plain HTTP",
            file=sys.stderr,
        )
    print(f"synckit sandbox serving {server.url}", flush=True)
    print(f"  API token:     {_shown(config.token, token_from)}")
    print(f"  client id:     {config.client_id}")
    print(f"  client secret: {_shown(config.client_secret, secret_from)}")
    print(f"  contacts:      {'in memory' if not config.db else config.db}")
    print("Press Ctrl-C to stop.", flush=True)
    # A supervisor's SIGTERM stops the server like Ctrl-C does: cleanly, exit 0.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nsandbox stopped", file=sys.stderr)
    return 0
