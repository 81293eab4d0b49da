"""Preflight: what a scheduled job gets wrong, found before anything is sent.

A nightly job that points at the wrong URL, lost its report folder or maps a
column the export renamed used to send every row anyway: each row failed (or
was created without the field), the job exited like a normal night, and
nobody heard of it. These checks run first and stop such a run with a clear
message and its own exit code:

- **configuration** (exit 2, nothing opened, nothing sent): the report and
  state folders exist and take a file (:func:`check_paths`); every mapped
  source column is in the file's header, each missing one named with the
  nearest header (:func:`check_mapping`);
- **the endpoint and the credential** (exit 3): one authenticated
  ``GET /contacts?limit=1`` must answer in the contract's shape
  (:func:`check_endpoint`). In a run, :func:`synckit.upsert` makes this check
  lazily, just before its first request, and a listing page the run sends
  anyway serves as the check at no extra cost; a run that needs no request
  sends none.

During a run, :func:`foreign_answer` tells a row's error that no Contacts API
gives (``404 No such endpoint`` on ``/contacts``, a ``501``, an HTML page):
the executor stops the run after :data:`FOREIGN_AFTER` identical ones in a
row instead of failing every row.

Problems are data (:class:`Problem`: ``check``, ``code``, ``message``,
``exit_code``); :func:`preflight` runs them all and returns a
:class:`Preflight`.

Example:
    >>> p = preflight(mapped=["Mobile"], headers=["E-mail", "Mobile Phone"])
    >>> p.ok, p.exit_code, p.problems[0].code
    (False, 2, 'unknown_column')
    >>> print(p.problems[0].message)
    mapped column not in the file's header: 'Mobile' (did you mean 'Mobile Phone'?)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from synckit._headers import missing_columns
from synckit.config import redact
from synckit.errors import (
    NON_HEALING_STATUSES,
    APIError,
    AuthError,
    ConfigError,
    PermissionDenied,
    TransportError,
)
from synckit.report import BAD_NIGHT_EXIT, Abort

if TYPE_CHECKING:
    from synckit.client import Client

__all__ = [
    "FOREIGN_AFTER",
    "NOT_CONTACTS_API",
    "Preflight",
    "PreflightError",
    "Problem",
    "check_endpoint",
    "check_mapping",
    "check_paths",
    "endpoint_problem",
    "file_columns",
    "foreign_answer",
    "frame_mapping_problems",
    "preflight",
    "streak_problem",
]

#: The abort code of an endpoint that is not the Contacts API (exit code 3).
NOT_CONTACTS_API: Final = "not_contacts_api"
#: Rows in a row that may end with the same answer no Contacts API gives before the
#: run stops (:func:`foreign_answer`). One such answer can be a passing proxy fault;
#: ten identical ones with no proper answer in between mean every row would get it.
FOREIGN_AFTER: Final = 10
#: Exit code of a configuration problem, and of an endpoint or credential problem.
CONFIG_EXIT: Final = 2
ENDPOINT_EXIT: Final = 3
# Statuses that mean "busy or down, try later", not "wrong place".
_UNAVAILABLE: Final = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Problem:
    """One thing preflight found wrong.

    ``check`` is ``paths``, ``mapping``, ``endpoint`` or ``credentials``;
    ``code`` is stable (``folder_missing``, ``not_a_folder``,
    ``folder_not_writable``, ``unknown_column``, ``not_contacts_api``,
    ``auth_error``, ``permission_denied``, ``invalid_client``, ``tls_error``,
    ``unreachable``, ``unavailable``); ``exit_code`` is what the command line
    exits with.

    Example:
        >>> Problem("paths", "folder_missing", "report folder /x does not exist", 2).abort()
        Abort(code='folder_missing', message='report folder /x does not exist', exit_code=2)
    """

    check: str
    code: str
    message: str
    exit_code: int = CONFIG_EXIT

    def abort(self) -> Abort:
        """The run's :class:`~synckit.report.Abort` for this problem."""
        return Abort(self.code, self.message, self.exit_code)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Preflight:
    """What :func:`preflight` found: every problem, and the requests it spent.

    Example:
        >>> Preflight().ok, Preflight().exit_code
        (True, 0)
    """

    problems: tuple[Problem, ...] = ()
    requests: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        """0, or the exit code of the first problem (configuration problems come first)."""
        return self.problems[0].exit_code if self.problems else 0

    def raise_for_problems(self) -> None:
        """Raise :class:`PreflightError` (all problems in one message) unless :attr:`ok`."""
        if self.problems:
            raise PreflightError(self.problems)


class PreflightError(ConfigError):
    """Preflight found problems: ``problems`` (data) and ``exit_code``.

    A :class:`~synckit.errors.ConfigError` (the command line's exit code 2);
    :attr:`exit_code` says 3 when the endpoint or credential is the problem.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        self.exit_code = self.problems[0].exit_code if self.problems else CONFIG_EXIT
        lines = [p.message for p in self.problems]
        text = lines[0] if len(lines) == 1 else "; ".join(lines)
        super().__init__(f"preflight: {text}; nothing was sent")


# --------------------------------------------------------------------------- local checks


def _folder_problem(what: str, target: str | os.PathLike[str]) -> Problem | None:
    """Whether a file can be created in the folder of ``target`` (tried, not guessed:
    permissions, ACLs and read-only mounts all answer a real attempt)."""
    path = Path(target)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        return Problem(
            "paths", "not_a_file", f"{what} {path} is a folder; give a file name in it", 2
        )
    if not folder.exists():
        return Problem(
            "paths",
            "folder_missing",
            f"{what} folder {folder} does not exist (create it, or point {what} elsewhere)",
            CONFIG_EXIT,
        )
    if not folder.is_dir():
        return Problem("paths", "not_a_folder", f"{what} folder {folder} is not a folder", 2)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".synckit-preflight-"):
            pass
    except OSError as exc:
        return Problem(
            "paths",
            "folder_not_writable",
            f"{what} folder {folder} is not writable ({exc.strerror or exc})",
            CONFIG_EXIT,
        )
    return None


def check_paths(
    *,
    report: str | os.PathLike[str] | None = None,
    state: str | os.PathLike[str] | None = None,
) -> list[Problem]:
    """Problems with where a run writes: the report's folder and the state ledger's folder.

    Both must exist and take a new file (the ledger adds ``-wal``, ``-shm``
    and ``.lock`` files beside itself). A run that cannot write its report
    would otherwise find out after sending every row.

    Example:
        >>> [p.code for p in check_paths(report="/no/such/folder/r.csv")]
        ['folder_missing']
    """
    out: list[Problem] = []
    for what, target in (("report", report), ("state", state)):
        if target is not None:
            problem = _folder_problem(what, target)
            if problem is not None:
                out.append(problem)
    return out


def check_mapping(mapped: Iterable[str], headers: Iterable[str]) -> list[Problem]:
    """One problem per mapped source column (``--map SRC=FIELD``) not in ``headers``.

    ``mapped`` are the mapping's source columns the file lacks (``read_csv``'s
    ``attrs["unmatched_columns"]``), or all of them: those found in
    ``headers`` (exactly, or ignoring case and surrounding spaces) pass.

    Example:
        >>> [p.message for p in check_mapping(["Email", "Mobile"], ["email", "Mobile Phone"])]
        ["mapped column not in the file's header: 'Mobile' (did you mean 'Mobile Phone'?)"]
    """
    names = [str(h) for h in headers]
    folded = {n.strip().casefold() for n in names}
    lacking = [m for m in mapped if str(m).strip().casefold() not in folded]
    return [
        Problem(
            "mapping",
            "unknown_column",
            f"mapped column not in the file's header: {missing}",
            CONFIG_EXIT,
        )
        for missing in missing_columns(lacking, names)
    ]


def file_columns(
    path: str | os.PathLike[str],
    columns: Mapping[str, str | None] | None = None,
    **read_options: Any,
) -> tuple[list[str], list[str]]:
    """``(headers, unmatched)`` of a contacts file: its header names, and the keys of
    ``columns`` no header matches. Reads one row, with :func:`synckit.read_csv`'s
    own rules (encoding, delimiter, leading blank lines).

    Example:
        >>> file_columns("sample_data/contacts.csv", {"Cell": "phone_number"})[1]
        ['Cell']
    """
    from synckit.io import read_csv

    reader: Any = read_csv(path, columns=columns, chunksize=1, **read_options)
    try:
        first = next(iter(reader))
    except StopIteration:
        return [], list(columns or {})
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()
    return _headers_of(first.attrs), list(first.attrs.get("unmatched_columns", []))


def _headers_of(attrs: Mapping[str, Any]) -> list[str]:
    """The file's header names, from what :func:`synckit.read_csv` records in ``attrs``."""
    return [
        *(attrs.get("columns") or {}),
        *(attrs.get("custom_columns") or {}),
        *([attrs["json_column"]] if attrs.get("json_column") else []),
        *(attrs.get("ignored_columns") or []),
    ]


def frame_mapping_problems(frame: Any) -> list[Problem]:
    """:func:`check_mapping` for a frame :func:`synckit.read_csv` read with ``columns=``:
    its ``attrs`` say which mapped columns the file lacked (none for other frames).

    Example:
        >>> import pandas as pd
        >>> df = pd.DataFrame({"email": ["a@x.io"]})
        >>> df.attrs = {"columns": {"Mail": "email"}, "unmatched_columns": ["Mobil"],
        ...             "ignored_columns": ["Mobile Phone"]}
        >>> [p.code for p in frame_mapping_problems(df)]
        ['unknown_column']
    """
    attrs = getattr(frame, "attrs", None) or {}
    unmatched = attrs.get("unmatched_columns") or []
    return check_mapping(unmatched, _headers_of(attrs)) if unmatched else []


# --------------------------------------------------------------------------- the endpoint


def _shown_url(client: Any) -> str:
    url = getattr(client, "shown_url", None) or getattr(client, "base_url", "?")
    return redact(str(url))


def _what_came_back(err: APIError) -> str:
    parts = [f"HTTP {err.status}" if err.status is not None else "no answer"]
    if err.content_type:
        parts.append(f"({err.content_type.split(';')[0].strip()})")
    text = f"{' '.join(parts)}: {err.message}"
    if err.request_id:
        text += f" (request_id {err.request_id})"
    return text


def _hint(err: APIError, url: str) -> str:
    if err.status is not None and 300 <= err.status < 400:
        return "; it redirects, which the Contacts API never does: use the address it redirects to"
    if err.status == 404 and not url.rstrip("/").endswith(("/v1", "/v2", "/v3")):
        return "; check the base URL: it usually ends in the API version, e.g. .../v1"
    if err.status == 404:
        return "; check the base URL"
    return "; check that the base URL is the Contacts API"


def foreign_answer(err: BaseException | None) -> tuple[int | None, str | None, str] | None:
    """A signature of an answer no Contacts API gives, or None for a proper answer.

    Foreign: a body that is not JSON or not the contract's shape, ``404`` or
    ``405`` on the collection ``/contacts`` (the contract never answers them
    there: the URL misses the version, say), ``405`` anywhere, any redirect
    (``3xx``), and ``501`` / ``505``. A ``404`` on ``/contacts/{id}`` is a contact that is gone, and
    ``429`` / ``5xx`` are a busy platform: proper answers.

    Example:
        >>> from synckit.errors import NotFound
        >>> foreign_answer(NotFound("No such endpoint", status=404, code="not_found",
        ...                         method="POST", path="/contacts"))
        (404, 'not_found', 'No such endpoint')
        >>> foreign_answer(NotFound("gone", status=404, path="/contacts/ct_1")) is None
        True
    """
    if not isinstance(err, APIError) or err.status is None:
        return None
    status, path = err.status, (err.path or "").rstrip("/")
    content_type = (err.content_type or "").lower()
    foreign = (
        err.code in ("not_json", "not_contacts_page")
        or status in NON_HEALING_STATUSES
        or status == 405
        # The contract never redirects and the client follows no redirect (it would
        # carry the credential elsewhere): a 3xx is a web server or an http->https hop.
        or 300 <= status < 400
        or (status == 404 and path.endswith("/contacts"))
        or (
            status not in _UNAVAILABLE
            and status >= 400
            and bool(content_type)
            and "json" not in content_type
        )
    )
    if not foreign:
        return None
    return (status, err.code, err.message[:120])


def endpoint_problem(err: APIError, client: Any) -> Problem | None:
    """The :class:`Problem` a failed ``GET /contacts?limit=1`` (or first listing page) shows.

    401/403 are the credential (the same :class:`~synckit.report.Abort` a run
    gets mid-way); an answer no Contacts API gives (:func:`foreign_answer`)
    says the URL is not the Contacts API (exit 3); no answer or a busy
    platform is ``unreachable`` / ``unavailable`` (exit 4: try again, or alert
    if it lasts). Another error in the contract's own words (a ``422``, say)
    is None: the API is there and said why, and the rows will say it too.
    """
    from synckit.sync.execute import abort_for

    url = _shown_url(client)
    if isinstance(err, (AuthError, PermissionDenied)):
        reason = abort_for(err)
        return Problem("credentials", reason.code, reason.message, reason.exit_code)
    if isinstance(err, TransportError):
        if not err.retryable and "SSL" in err.message.upper():
            return Problem(
                "endpoint",
                "tls_error",
                f"{url}: TLS failed and cannot succeed by retrying ({err.message})",
                ENDPOINT_EXIT,
            )
        return Problem(
            "endpoint",
            "unreachable",
            f"{url} cannot be reached ({err.message}); nothing was sent",
            BAD_NIGHT_EXIT,
        )
    if foreign_answer(err) is not None or err.status is None:
        return Problem(
            "endpoint",
            NOT_CONTACTS_API,
            f"{url} does not answer like the Contacts API: GET {url}/contacts gave "
            f"{_what_came_back(err)}{_hint(err, url)}",
            ENDPOINT_EXIT,
        )
    if err.status in _UNAVAILABLE:
        return Problem(
            "endpoint",
            "unavailable",
            f"{url}/contacts is not available ({_what_came_back(err)}); nothing was sent",
            BAD_NIGHT_EXIT,
        )
    return None


def streak_problem(err: APIError, client: Any, rows: int) -> Problem:
    """The :class:`Problem` of ``rows`` rows in a row answered with the same foreign answer."""
    url = _shown_url(client)
    where = f" [{err.method} {url}{err.path}]" if err.method and err.path else ""
    return Problem(
        "endpoint",
        NOT_CONTACTS_API,
        f"{rows} rows in a row got the same answer no Contacts API gives: "
        f"{_what_came_back(err)}{where}{_hint(err, url)}; the rows not sent are skipped",
        ENDPOINT_EXIT,
    )


def check_endpoint(client: Client) -> Problem | None:
    """One authenticated ``GET /contacts?limit=1``; a :class:`Problem` unless it answers a
    page of contacts (``{"data": [...], "next_cursor": ...}``) with the credential accepted
    (or another error in the contract's words: see :func:`endpoint_problem`).

    Example:
        >>> check_endpoint(client)  # the sandbox                  # doctest: +SKIP
        >>> wrong = Client(sb.url.removesuffix("/v1"), token=sb.token)  # doctest: +SKIP
        >>> check_endpoint(wrong).code                            # doctest: +SKIP
        'not_contacts_api'
    """
    try:
        client.list_page(limit=1)
    except APIError as err:
        return endpoint_problem(err, client)
    return None


def preflight(
    client: Client | None = None,
    *,
    report: str | os.PathLike[str] | None = None,
    state: str | os.PathLike[str] | None = None,
    mapped: Iterable[str] = (),
    headers: Iterable[str] = (),
) -> Preflight:
    """Every check that applies: paths, mapping, then (only when those pass, and with a
    ``client``) the endpoint and credential -- one request.

    Configuration problems are all listed at once; no request is spent on a
    run that cannot start anyway.

    Example:
        >>> preflight(report="/no/such/folder/r.csv").problems[0].code
        'folder_missing'
    """
    problems = [*check_paths(report=report, state=state), *check_mapping(mapped, headers)]
    if problems or client is None:
        return Preflight(tuple(problems))
    found = check_endpoint(client)
    return Preflight((found,) if found is not None else (), requests=1)
