"""The sync engine: :func:`upsert` rows into the Contacts API, knowing before it sends.

The package's modules follow the data:

- :mod:`~synckit.sync.source`: inputs become numbered, validated chunks;
- :mod:`~synckit.sync.discover`: what the platform already holds, learnt by
  listing the account or looking rows up, whichever costs fewer requests;
- :mod:`~synckit.sync.plan`: pure; each row becomes ``unchanged`` (no request),
  one ``PATCH`` of the fields that differ, one ``POST``, or a failure found
  before sending;
- :mod:`~synckit.sync.flows`: the steps that depend on an answer (a ``409``
  naming a contact, a ``404`` on a PATCH, the consent read) as generators;
- :mod:`~synckit.sync.preflight`: what a scheduled job gets wrong (the URL,
  the credential, output folders, the column mapping), found before sending;
- :mod:`~synckit.sync.execute`: threads, the client, stopping, the breakers;
- :mod:`~synckit.sync.record`: report rows, errors and ledger entries;
- :mod:`~synckit.sync.run`: one run, in that order.

Example:
    >>> import pandas as pd, synckit
    >>> df = pd.DataFrame({"email": ["ada@example.com", "bad@"], "first_name": ["Ada", "X"]})
    >>> with synckit.serve_sandbox() as sb, synckit.Client(sb.url, token=sb.token) as client:
    ...     report = synckit.upsert(df, client, progress=False)
    ...     again = synckit.upsert(df, client, progress=False)
    >>> report.summary()[["created", "invalid"]].tolist(), again.summary()["unchanged"]
    ([1, 1], np.int64(1))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synckit.report import DEFAULT_MAX_FAILURE_RATE
from synckit.sync.execute import INTERRUPT_GRACE, UNREACHABLE_AFTER
from synckit.sync.preflight import FOREIGN_AFTER, Preflight, PreflightError, Problem, preflight
from synckit.sync.run import RunOptions, last_report, run_upsert

if TYPE_CHECKING:
    from synckit.client import Client
    from synckit.report import SyncReport

__all__ = [
    "FOREIGN_AFTER",
    "INTERRUPT_GRACE",
    "UNREACHABLE_AFTER",
    "Preflight",
    "PreflightError",
    "Problem",
    "default_report_path",
    "last_report",
    "preflight",
    "upsert",
]


def upsert(
    data: Any,
    client: Client,
    *,
    batch_size: int = 100,
    workers: int | None = None,
    dry_run: bool = False,
    progress: bool = True,
    default_region: str = "US",
    sms_countries: Iterable[str] | None = None,
    raise_on_error: bool = False,
    state: str | os.PathLike[str] | None = None,
    retry_failed: bool = False,
    allow_resubscribe: bool = False,
    duplicates: str = "last",
    source: str | None = None,
    in_flight_limit: Callable[[], int] | None = None,
    validate_options: Mapping[str, Any] | None = None,
    log_fields: Mapping[str, Any] | None = None,
    preflight: bool = True,
    max_failure_rate: float | None = DEFAULT_MAX_FAILURE_RATE,
) -> SyncReport:
    """Create or update every valid row through ``client``; returns a :class:`SyncReport`.

    **What a row costs.** Before any write, upsert learns what the platform
    holds for the rows it does not know from the ledger: it lists the account
    (100 contacts per request) or looks rows up (about one request per row),
    whichever is cheaper, never more than about twice the cheaper (the
    account's size is not known in advance; see :mod:`synckit.sync.discover`).
    Then an unchanged row sends nothing (``unchanged``), a changed row one
    ``PATCH`` of the fields that differ to the known id (``updated``), a new
    row one ``POST`` (``created``). Matching follows the contract (email,
    case-insensitively, first; then phone): an email held by one contact and
    a phone by another fails the row before anything is sent. Races stay
    safe: a ``409`` on a create becomes an update of the contact it names, a
    ``404`` on a PATCH becomes a create.

    ``data``:

    - a DataFrame (validated with ``default_region``, ``sms_countries`` and
      ``validate_options``, e.g. ``{"defaults": {"email_consent":
      "subscribed"}, "invalid_fields": "drop"}``; invalid rows are reported,
      never sent) or a :class:`~synckit.validation.Validation`;
    - a Dask DataFrame (:func:`synckit.dask.read_csv`) or a Dask-backed
      ``Validation``: validated on the cluster (duplicates across every
      partition and file), then streamed to this process a partition at a
      time, so the driver holds about two partitions; the driver does the HTTP;
    - a function returning a fresh iterator of chunks (DataFrames or
      ``Validation`` objects), e.g. ``lambda: read_csv(path, chunksize=20_000)``,
      or a list of chunks: read **twice**, once to find duplicates and what to
      ask the platform, once to send, in bounded memory (this is what
      ``synckit sync`` does);
    - an iterator of chunks (``read_csv(path, chunksize=...)``), read **once**:
      a row whose email or phone an earlier chunk already had is
      ``duplicate_in_file`` (the **first** copy is sent, since later chunks
      are not known yet), and discovery happens chunk by chunk.

    **At most one write per contact per run.** Rows sharing an email or phone
    (transitively) are duplicates: ``duplicates="last"`` sends the last copy
    and reports the others ``invalid`` (``duplicate_in_file``); ``"error"``
    sends none of them. Two rows with different emails and phones that the
    platform holds as *one* contact are not copies of one record: the first
    row is sent and a later one is ``skipped`` with ``duplicate_contact``,
    naming the contact and the row that has it.

    ``report.rows`` is indexed like the input, so ``df.join(report.rows)``
    lines up; the spreadsheet row number is the index when the input is
    indexed by it (``read_csv``), else a ``row`` column; a ``source`` column
    is kept when the input has one. ``report.failed_rows()`` gives the input
    rows to fix, all columns, custom fields as JSON.

    Rows run on ``workers`` threads sharing the client (default: the client's
    ``concurrency.ceiling``, else 8); ``in_flight_limit``
    (a function, re-read as rows are dispatched) says how many requests to
    keep in flight, ``workers`` being the ceiling. By default it is the
    client's own concurrency controller (``client.concurrency.limit``) when
    the client has one, else ``workers``.
    ``batch_size`` rows are written to the ledger at a time. The progress bar
    shows with ``progress=True`` on a terminal or in a notebook.

    - A ``401`` that survives token renewal, ``invalid_client`` or a ``403``
      stops the run at once: unsent rows are ``skipped``, ``report.aborted``
      (an :class:`~synckit.report.Abort`: code, message, exit code 3) says
      why. With ``raise_on_error=True`` the error is raised (``exc.report``).
    - ``preflight=True`` (the default): before its first request the run
      checks that the base URL is the Contacts API and the credential is
      accepted -- one ``GET /contacts?limit=1``, or none when the run lists
      the account anyway (the first page is the check) or the client already
      saw a page (``client.endpoint_verified``); a run that sends nothing
      sends no check. A wrong URL (``404 No such endpoint``, an HTML page, a
      ``501``) stops the run before anything is sent: every row ``skipped``,
      ``report.aborted.code == "not_contacts_api"``, exit code 3. A state
      folder that does not exist is a :class:`~synckit.errors.ConfigError`
      (:class:`~synckit.sync.preflight.PreflightError`) before anything
      starts. Mid-run, ``FOREIGN_AFTER`` = 10 rows in a row with the same
      such answer stop the run the same way.
    - An unreachable server (no answer, after the client's retries, for
      ``UNREACHABLE_AFTER`` = 3 rows in a row, or for the preflight check)
      stops the run too (``report.aborted.code == "unreachable"``, exit code 4).
    - ``max_failure_rate`` (default 0.5): a run in which the API refused more
      than that share of the rows it was sent (``report.failure_rate()``,
      with at least 10 rows failed) exits 4 instead of 1
      (``report.too_many_failed``); None turns this off.
    - ``quota_exceeded`` fails the rows that needed a create; updates go on.
    - Ctrl-C: nothing new is sent, requests in flight finish (at most a few
      seconds), the rest are ``skipped`` (``interrupted``), then
      ``KeyboardInterrupt`` is re-raised with the report at ``exc.report``
      (and in :func:`last_report`).
    - ``dry_run=True`` sends no write: the same plan, costing only what
      discovery costs (plus a read where consent protection needs one);
      rows are ``would_create``, ``would_update`` (``changes`` lists the
      fields), ``unchanged``, ``invalid``, ``failed``. With ``state=`` it
      reads the ledger if there is one and never creates or changes it.
    - ``state=PATH``: the ledger (incremental, resumable runs, one run at a
      time per file: :class:`~synckit.errors.StateLockedError`). A row the
      ledger confirmed is compared with what it confirmed: the same payload
      costs nothing, a changed one is a ``PATCH`` of what changed since, so
      an edit made in the platform is never overwritten. Idempotency keys
      derive from each row's key and payload, so a run killed at any point
      resumes without duplicates. ``retry_failed=True`` sends only the rows
      whose last outcome was failed, invalid or skipped, and rows never sent.
    - Consent protection: an update never turns ``email_consent``
      unsubscribed/suppressed or ``sms_consent`` unsubscribed into an opt-in;
      the field is left out and a ``consent_protected`` warning added.
      ``allow_resubscribe=True`` turns this off.
    - ``source`` names the input in the ledger's run history.
    - Logging: one ``run_started`` record (logger ``synckit.run``: run id,
      source, options; ``log_fields`` adds more, names that look like
      secrets left out) as soon as the run has its id, so a run killed
      later still left a trace; :func:`synckit.config.log_report` writes the
      ``run_finished`` one.
    - SIGTERM: a program that calls
      :func:`synckit.sync.execute.stop_on_sigterm` gets SIGTERM handled like
      Ctrl-C, raising :class:`~synckit.sync.execute.Terminated` (a
      ``KeyboardInterrupt``) with the report; ``report.exit_code()`` is then
      143 (130 after Ctrl-C).

    Empty cells are not sent, so they never clear a value in the platform.

    Example:
        >>> report = synckit.upsert(df, client, progress=False)              # doctest: +SKIP
        >>> df.join(report.rows[["status", "contact_id"]])                   # doctest: +SKIP
        >>> synckit.upsert(lambda: synckit.read_csv("big.csv", chunksize=20_000),
        ...                client, state="contacts.db")                       # doctest: +SKIP
    """
    if workers is None:
        # Threads for the most requests the client ever lets in flight; its adaptive
        # limit (the server's limit x latency) decides how many are busy at once.
        controller = getattr(client, "concurrency", None)
        workers = int(getattr(controller, "ceiling", 8))
    opts = RunOptions(
        batch_size=batch_size,
        workers=workers,
        dry_run=dry_run,
        progress=progress,
        default_region=default_region,
        sms_countries=frozenset(sms_countries) if sms_countries is not None else None,
        raise_on_error=raise_on_error,
        state=state,
        retry_failed=retry_failed,
        allow_resubscribe=allow_resubscribe,
        duplicates=duplicates,
        source=source,
        in_flight_limit=in_flight_limit,
        validate_options=dict(validate_options or {}),
        log_fields=dict(log_fields or {}),
        preflight=preflight,
        max_failure_rate=max_failure_rate,
    )
    return run_upsert(data, client, opts)


def default_report_path(source: str | os.PathLike[str]) -> Path:
    """Where ``synckit sync FILE`` writes its report by default: ``<stem>.report.csv`` beside FILE.

    Example:
        >>> default_report_path("exports/contacts.csv").as_posix()
        'exports/contacts.report.csv'
    """
    path = Path(source)
    return path.with_name(f"{path.stem}.report.csv")
