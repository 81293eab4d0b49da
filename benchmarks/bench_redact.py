"""What masking secrets costs a log line or an error message.

Run: python benchmarks/bench_redact.py

Every log line, exception message and error detail passes through
``synckit._secrets.redact`` (registered values, then patterns). This times it
on realistic lines -- a retry line, a validation message, a 401 message naming
the token -- with 0, 3 and 256 registered 200-character secrets (256 is the
registry's cap: a process renewing an access token every two hours for three
weeks), next to the baseline measured in the same run: ``json.dumps`` of the
same line as a JSON log record, the work emitting the line costs anyway.
Best of 5 repeats, microseconds per line; plus what registering a value costs
(the pattern is rebuilt then: once per client and per new access token).
"""

from __future__ import annotations

import importlib
import json
import secrets
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import synckit._secrets as S

LINES = {
    "retry line": "retrying POST /contacts after 503 (request_id=req_01HZX3) in 0.25s "
    "[attempt 2 of 7]",
    "validation message": "One or more fields failed validation (email: must be a valid "
    "email address)",
    "401 naming the token": "the token {token} was revoked -- the API token was rejected "
    "(expired, revoked or wrong): create a new token and set SYNCKIT_TOKEN",
}


def best(fn: object, number: int = 2000) -> float:
    times = timeit.repeat(fn, number=number, repeat=5)  # type: ignore[arg-type]
    return min(times) / number * 1e6


def main() -> None:
    print(f"{'line':22} {'registered':>10} {'redact µs':>10} {'json µs':>8} {'ratio':>6}")
    for registered in (0, 3, 256):
        importlib.reload(S)  # an empty registry
        # No common prefix (a shared one, like sk_live_, would let the regex skip faster).
        tokens = [secrets.token_urlsafe(150) for _ in range(registered)]
        started = time.perf_counter()
        for token in tokens:
            S.register(token)
        if tokens:  # each registration recompiles the pattern: once per new access token
            took = (time.perf_counter() - started) / len(tokens) * 1000
            print(f"  registering {registered} values: {took:.1f} ms each on average")
        for name, template in LINES.items():
            line = template.format(token=tokens[-1] if tokens else "sk_live_unregistered")
            record = {"time": "2026-12-02T02:15:41.213Z", "level": "WARNING", "message": line}
            masked = best(lambda line=line: S.redact(line))
            baseline = best(lambda record=record: json.dumps(record))
            print(
                f"{name:22} {registered:>10} {masked:>10.1f} {baseline:>8.1f} "
                f"{masked / baseline:>6.2f}"
            )


if __name__ == "__main__":
    main()
