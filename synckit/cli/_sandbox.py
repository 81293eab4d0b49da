"""``synckit sandbox``: serve the Contacts API sandbox on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any

from synckit.sandbox import SandboxConfig
from synckit.sandbox.server import SandboxServer

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
    p.add_argument("--token", default=_DEFAULTS.token, help="static API token")
    p.add_argument("--client-id", default=_DEFAULTS.client_id, help="OAuth client id")
    p.add_argument("--client-secret", default=_DEFAULTS.client_secret, help="OAuth client secret")
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


def _shown(value: str, default: str, flag: str) -> str:
    return value if value == default else f"(as given with {flag})"


def run(args: argparse.Namespace) -> int:
    """Start the server, print where it is and how to authenticate, serve until Ctrl-C."""
    config = SandboxConfig(
        host=args.host,
        port=args.port,
        db=args.db,
        token=args.token,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_ttl=args.token_ttl,
        rate_limit=args.rate_limit,
        latency_ms=args.latency,
        fail_rate=args.fail_rate,
        drop_rate=args.drop_rate,
        contact_limit=args.contact_limit,
        error_style=args.error_style,
    )
    server = SandboxServer(config)
    # The documented demo credentials are printed so the demo works out of
    # the box; values given on the command line may be real, so never echo them.
    print(f"synckit sandbox serving {server.url}", flush=True)
    print(f"  API token:     {_shown(config.token, _DEFAULTS.token, '--token')}")
    print(f"  client id:     {config.client_id}")
    print(
        "  client secret: "
        + _shown(config.client_secret, _DEFAULTS.client_secret, "--client-secret")
    )
    print(f"  contacts:      {'in memory' if not config.db else config.db}")
    print("Press Ctrl-C to stop.", flush=True)
    # A supervisor's SIGTERM stops the server like Ctrl-C does: cleanly, exit 0.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nsandbox stopped", file=sys.stderr)
    return 0
