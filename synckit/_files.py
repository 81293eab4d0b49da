"""Every file synckit writes goes through here: private, atomic, and (CSV) formula-escaped.

The files hold personal data (reports, error lists, failed rows, the state
ledger), so they are created ``0600`` -- readable by their owner only --
whatever the process umask, unless the caller passes an explicit
``file_mode``. Whole files (CSV, Parquet) are written to a temporary file in
the same folder and moved into place with :func:`os.replace`: a reader never
sees half a report, and a crash leaves the previous file intact. The ledger is
a database written in place; :func:`private_file` gives it (and its ``-wal``,
``-shm`` and ``.lock`` companions) the same mode before SQLite opens it.

CSV cells a spreadsheet would run as formulas -- text starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return -- get a leading ``'``
(OWASP's advice against CSV injection) in every CSV synckit writes, through
:func:`escape_formulas`; :func:`unescape_formulas` undoes it exactly.

Example:
    >>> import tempfile, os
    >>> import pandas as pd
    >>> path = os.path.join(tempfile.mkdtemp(), "out.csv")
    >>> p = write_csv(path, pd.DataFrame({"email": ["=HYPERLINK(1)"]}))
    >>> oct(p.stat().st_mode & 0o777), p.read_text().splitlines()
    ('0o600', ['email', "'=HYPERLINK(1)"])
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Final

import pandas as pd

from synckit.errors import ConfigError

__all__ = [
    "DEFAULT_FILE_MODE",
    "CsvExport",
    "atomic_write",
    "check_file_mode",
    "csv_export",
    "escape_formulas",
    "narrow_mode",
    "private_file",
    "unescape_formulas",
    "write_csv",
]

#: Owner read/write only: the files hold names, emails, phone numbers and consent.
DEFAULT_FILE_MODE: Final = 0o600

# Cells that a spreadsheet would evaluate, possibly behind quotes we added before.
_FORMULA_RE: Final = re.compile(r"^'*[=+\-@\t\r]")
_ESCAPED_RE: Final = re.compile(r"^''*[=+\-@\t\r]")


def check_file_mode(file_mode: int | None) -> int:
    """The permission bits to create files with: ``file_mode``, or ``0o600`` when None.

    Only permission bits are allowed (no set-uid, sticky or type bits), and
    the owner must keep read and write access (synckit reads its ledger back).

    Example:
        >>> oct(check_file_mode(None)), oct(check_file_mode(0o640))
        ('0o600', '0o640')
    """
    if file_mode is None:
        return DEFAULT_FILE_MODE
    if isinstance(file_mode, bool) or not isinstance(file_mode, int):
        raise ConfigError(f"file_mode must be an int such as 0o600, not {file_mode!r}")
    if file_mode & ~0o777 or (file_mode & 0o600) != 0o600:
        raise ConfigError(
            f"file_mode must be permission bits giving the owner read and write "
            f"(0o600 to 0o666), not {oct(file_mode)}"
        )
    return file_mode


def _chmod(fd: int, path: str | os.PathLike[str], mode: int) -> None:
    # fchmod sets the bits exactly: os.open's mode argument would be cut by the umask.
    if hasattr(os, "fchmod"):
        os.fchmod(fd, mode)
    else:  # pragma: no cover - Windows has no POSIX permission bits to speak of
        os.chmod(path, mode)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    *,
    binary: bool = False,
    file_mode: int | None = None,
    encoding: str = "utf-8",
) -> Iterator[IO[Any]]:
    """Write ``path`` all at once: yields a handle on a private temporary file beside it.

    When the block ends normally the file is flushed, fsynced and moved over
    ``path`` with :func:`os.replace` (atomic on one file system); if the block
    raises, the temporary file is removed and ``path`` is left as it was. The
    new file has ``file_mode`` (default ``0o600``) exactly, whatever the umask.
    Text mode writes ``encoding`` with no newline translation (``newline=""``,
    as the csv module wants).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "plan.txt")
        >>> with atomic_write(path) as fh:
        ...     _ = fh.write("hello")
        >>> open(path).read(), oct(os.stat(path).st_mode & 0o777)
        ('hello', '0o600')
    """
    mode = check_file_mode(file_mode)
    target = Path(path)
    # mkstemp creates the file 0600 with O_EXCL: no other user can open it in between.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        _chmod(fd, tmp, mode)
        handle: IO[Any] = (
            os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding=encoding, newline="")
        )
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def private_file(path: str | os.PathLike[str], *, file_mode: int | None = None) -> Path:
    """Make sure ``path`` exists with no more permission than ``file_mode`` (default 0600).

    For files written in place (the SQLite ledger, its lock file): a new file
    is created with exactly ``file_mode``; an existing one that grants more
    (e.g. a ledger created 0644 by an older version) is narrowed to it. An
    existing file with fewer bits is left alone. Returns the path.

    Example:
        >>> import tempfile, os
        >>> p = private_file(os.path.join(tempfile.mkdtemp(), "state.db"))
        >>> oct(p.stat().st_mode & 0o777)
        '0o600'
    """
    mode = check_file_mode(file_mode)
    target = Path(path)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags | os.O_EXCL, mode)
        created = True
    except FileExistsError:
        try:
            fd = os.open(target, flags & ~os.O_CREAT)
        except OSError:
            # A symlink (O_NOFOLLOW) or a file we may not open read-write: let the
            # caller's own open report it; only narrow what we own.
            narrow_mode(target, mode)
            return target
        created = False
    try:
        current = stat.S_IMODE(os.fstat(fd).st_mode)
        if created and current != mode:
            _chmod(fd, target, mode)
        elif not created and current & ~mode:
            _chmod(fd, target, current & mode)
    finally:
        os.close(fd)
    return target


def narrow_mode(path: str | os.PathLike[str], mode: int) -> None:
    """Remove from an existing ``path`` every permission bit ``mode`` lacks (if we may)."""
    with contextlib.suppress(OSError):
        current = stat.S_IMODE(os.stat(path).st_mode)
        if current & ~mode:
            os.chmod(path, current & mode)


# --------------------------------------------------------------------------- CSV


def _escape_series(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        if cats.dtype.kind not in "OUT" and str(cats.dtype) not in ("str", "string"):
            return s
        new = ["'" + c if isinstance(c, str) and _FORMULA_RE.match(c) else c for c in cats]
        return s.cat.rename_categories(new) if list(new) != list(cats) else s
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        text = s.astype("str") if s.dtype == object else s
        hit = text.str.match(_FORMULA_RE.pattern, na=False).astype(bool)
        if not hit.any():
            return s
        out = s.astype(object).copy()
        out[hit] = "'" + text[hit]
        return out
    return s


def escape_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells a spreadsheet would run as formulas start with ``'``.

    The one escaping function: every CSV synckit writes passes through it.

    Example:
        >>> escape_formulas(pd.DataFrame({"a": ["=1+1", "+44", "ok", "'=x"]}))["a"].tolist()
        ["'=1+1", "'+44", 'ok', "''=x"]
    """
    return df.apply(_escape_series) if len(df.columns) else df.copy()


def unescape_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`escape_formulas` (for a CSV report read back).

    Example:
        >>> unescape_formulas(pd.DataFrame({"a": ["'=1+1", "''=x", "'plain"]}))["a"].tolist()
        ['=1+1', "'=x", "'plain"]
    """
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            hit = s.astype("str").str.match(_ESCAPED_RE.pattern, na=False).astype(bool)
            if hit.any():
                fixed = s.astype(object).copy()
                fixed[hit] = s[hit].astype("str").str.slice(1)
                out[col] = fixed.astype(s.dtype)
    return out


def _json_cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def _json_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Object cells holding dicts or lists (``custom_fields``) as JSON, as a sheet held them."""
    out = frame
    for col in frame.columns:
        s = frame[col]
        if s.dtype == object and s.map(lambda v: isinstance(v, (dict, list))).any():
            if out is frame:
                out = frame.copy()
            out[col] = s.map(_json_cell)
    return out


class CsvExport:
    """An open CSV export: :meth:`write` frames one after the other (the header once).

    Made by :func:`csv_export`; each frame is written with JSON for
    dict/list cells and, unless ``escape=False``, :func:`escape_formulas`
    applied. Lines end in CRLF (RFC 4180), so a cell holding a bare CR is
    quoted instead of read as a line break.
    """

    def __init__(self, handle: IO[str], *, escape: bool = True) -> None:
        self._handle = handle
        self._escape = escape
        self.rows = 0
        self.header_written = False

    def write(self, frame: pd.DataFrame, *, index: bool = False) -> None:
        """Append ``frame`` (with its index as the first column when ``index``; an
        unnamed index is the sheet's ``row`` number)."""
        if index:
            names = [n if n is not None else "row" for n in frame.index.names]
            frame = frame.rename_axis(names).reset_index()
        frame = _json_cells(frame)
        if self._escape:
            frame = escape_formulas(frame)
        frame.to_csv(
            self._handle, index=False, header=not self.header_written, lineterminator="\r\n"
        )
        self.header_written = True
        self.rows += len(frame)

    def write_header(self, columns: Sequence[str]) -> None:
        """Write just a header line (an export with no rows), unless one was written."""
        if not self.header_written:
            self.write(pd.DataFrame(columns=list(columns)))


@contextlib.contextmanager
def csv_export(
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    escape: bool = True,
    file_mode: int | None = None,
) -> Iterator[CsvExport]:
    """Write a CSV to ``path`` in pieces, privately and atomically (see :func:`atomic_write`).

    ``columns`` is the header written when no frame was (an empty export
    still says what it would hold).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "errors.csv")
        >>> with csv_export(path, columns=["row", "value"]) as out:
        ...     out.write(pd.DataFrame({"row": [2], "value": ["@SUM(A1)"]}))
        ...     out.write(pd.DataFrame({"row": [3], "value": ["ok"]}))
        >>> open(path).read().splitlines()
        ['row,value', "2,'@SUM(A1)", '3,ok']
    """
    with atomic_write(path, file_mode=file_mode) as handle:
        out = CsvExport(handle, escape=escape)
        yield out
        if columns is not None:
            out.write_header(columns)


def write_csv(
    path: str | os.PathLike[str],
    frames: pd.DataFrame | Iterable[pd.DataFrame],
    *,
    index: bool = False,
    escape: bool = True,
    file_mode: int | None = None,
) -> Path:
    """Write one frame (or several, concatenated) to ``path`` as an escaped, private CSV.

    Example:
        >>> import tempfile, os
        >>> p = write_csv(os.path.join(tempfile.mkdtemp(), "x.csv"),
        ...               pd.DataFrame({"a": ["\\t=1+1"]}, index=pd.Index([7], name="row")),
        ...               index=True)
        >>> p.read_text().splitlines()
        ['row,a', "7,'\\t=1+1"]
    """
    parts = [frames] if isinstance(frames, pd.DataFrame) else frames
    with csv_export(path, escape=escape, file_mode=file_mode) as out:
        for frame in parts:
            out.write(frame, index=index)
    return Path(path)
