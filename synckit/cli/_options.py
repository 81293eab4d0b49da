"""The options ``synckit validate`` and ``synckit sync`` share, defined once.

Both commands read the same file the same way, so they take the same names
with the same meaning: ``FILE`` (``-`` for stdin), ``--config``, ``--map``,
``--region``, ``--chunk-size``, ``--duplicates``, ``--sms-countries``,
``--set``, ``--value`` and ``--invalid-fields``. Every one defaults to None
so that a ``--config`` file can fill what the command line did not give
(:func:`synckit.config.apply_config`); each command passes its real defaults.

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser()
    >>> add_input_options(p, command="validate")
    >>> ns = p.parse_args(["x.csv", "--chunk-size", "10", "--sms-countries", "us, gb"])
    >>> ns.chunk_size, sms_countries(ns.sms_countries)
    (10, ['US', 'GB'])
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from synckit.errors import ConfigError

#: The path that means stdin (for FILE) or stdout (for ``--report`` and ``--errors``).
STDIO = "-"


class _DeprecatedAlias(argparse.Action):
    """An old spelling that still works, with a one-line notice on stderr."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, new: str, **kw: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kw)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(
            f"synckit: {option_string} is deprecated; use {self.new} (same meaning)",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def add_input_options(parser: argparse.ArgumentParser, *, command: str) -> None:
    """Add FILE and the options that say how it is read and checked (``command``:
    ``"validate"`` or ``"sync"``; only ``--duplicates keep`` differs, validate-only)."""
    parser.add_argument(
        "file",
        metavar="FILE",
        help="contacts CSV (UTF-8/UTF-16/cp1252; , ; or tab); - reads stdin",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="TOML file with any of these options (a [sync] table or the top level); "
        "the command line wins over it",
    )
    parser.add_argument(
        "--map",
        action="append",
        metavar="SRC=FIELD",
        help='map a CSV header to a contact field, e.g. --map "E-mail Address=email" '
        "(repeatable; FIELD may be custom.<key>, or empty to drop the column)",
    )
    parser.add_argument(
        "--region", metavar="R", help="default region for national phone numbers (US)"
    )
    default_chunk = "20000" if command == "sync" else "50000"
    parser.add_argument(
        "--chunk-size",
        type=int,
        metavar="N",
        help=f"rows read per chunk: bounded memory for any file size ({default_chunk})",
    )
    # validate spelled it --chunksize before the two commands shared their options.
    parser.add_argument(
        "--chunksize",
        dest="chunk_size",
        type=int,
        action=_DeprecatedAlias,
        new="--chunk-size",
        help=argparse.SUPPRESS,
    )
    choices = ("last", "error", "keep") if command == "validate" else ("last", "error")
    parser.add_argument(
        "--duplicates",
        choices=choices,
        help="rows sharing an email or phone: keep the last copy (default) or reject all"
        + (", or keep all" if command == "validate" else " (a contact is written once a run)"),
    )
    parser.add_argument(
        "--sms-countries",
        metavar="CC,CC",
        help="regions that accept SMS (default: the contract's list)",
    )
    add_value_options(parser)


def add_value_options(parser: argparse.ArgumentParser) -> None:
    """The value options ``validate`` and ``sync`` share (default None: a config may set them)."""
    parser.add_argument(
        "--set",
        action="append",
        metavar="FIELD=VALUE",
        help="a constant for the field's empty cells, e.g. --set email_consent=subscribed "
        "(repeatable; first_name, last_name, the consents, or custom.<key>)",
    )
    parser.add_argument(
        "--value",
        action="append",
        metavar="FIELD:FROM=TO",
        help="map one value of a column, e.g. --value email_consent:yes=subscribed "
        "(repeatable; matched ignoring case and spaces; an empty TO empties the cell)",
    )
    parser.add_argument(
        "--invalid-fields",
        choices=("reject", "drop"),
        default=None,
        help="a row with an invalid optional field: reject the row (default), or send it "
        "without that field (drop; it still needs a valid email or phone)",
    )


def mapping(pairs: Any) -> dict[str, str | None] | None:
    """``--map SRC=FIELD`` pairs (or a config's table) as read_csv's ``columns``.

    An empty FIELD drops the column. None when there are none.

    Example:
        >>> mapping(["E-mail Address=email", "Notes="])
        {'E-mail Address': 'email', 'Notes': None}
        >>> mapping({"Mobile": "phone_number"}), mapping(None)
        ({'Mobile': 'phone_number'}, None)
    """
    if not pairs:
        return None
    if isinstance(pairs, Mapping):
        return {str(k): str(v).strip() or None for k, v in pairs.items()}
    out: dict[str, str | None] = {}
    for pair in pairs if isinstance(pairs, list) else [pairs]:
        source, sep, target = str(pair).rpartition("=")
        if not sep or not source.strip():
            raise ConfigError(f"--map expects SRC=FIELD, got {pair!r}")
        out[source.strip()] = target.strip() or None
    return out


def sms_countries(value: Any) -> list[str] | None:
    """``--sms-countries "US,GB"`` (or a config's list) as upper-case region codes.

    Example:
        >>> sms_countries("us, gb"), sms_countries(["CA"]), sms_countries(None)
        (['US', 'GB'], ['CA'], None)
    """
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return [c.strip().upper() for c in items if c.strip()]


def check_at_least_one(opts: Mapping[str, Any], *names: str) -> None:
    """A :class:`ConfigError` naming the first of ``names`` below 1."""
    for name in names:
        if opts.get(name) is not None and int(opts[name]) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")


# --------------------------------------------------------------------------- "-" paths


@contextlib.contextmanager
def input_file(name: str) -> Iterator[Path]:
    """FILE as a path: the file itself, or stdin copied to a private temporary file.

    Copied, not streamed: ``sync`` reads its input twice (duplicates and what
    to ask the platform are found over the whole input before anything is
    sent), and a pipe can be read once. The copy is created ``0600`` and
    removed when the command ends, however it ends.
    """
    if name != STDIO:
        yield Path(name)
        return
    with tempfile.TemporaryDirectory(prefix="synckit-stdin-") as folder:
        path = Path(folder) / "stdin.csv"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        yield path


@contextlib.contextmanager
def output_file(name: str | None) -> Iterator[Path | None]:
    """An output path: ``name`` itself, or for ``-`` a private temporary file whose
    content goes to stdout once the block ends without an error."""
    if name != STDIO:
        yield None if name is None else Path(name)
        return
    with tempfile.TemporaryDirectory(prefix="synckit-out-") as folder:
        path = Path(folder) / "out.csv"
        yield path
        if path.exists():
            sys.stdout.flush()
            with path.open("rb") as src:
                shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()


def estimated_rows(path: Path) -> int | None:
    """Records in a CSV, counted by line ends (a quoted cell spanning lines counts more):
    the progress bar's total, so it shows an ETA. None for a file it cannot read.

    Example:
        >>> import tempfile, os
        >>> p = Path(tempfile.mkdtemp()) / "x.csv"
        >>> _ = p.write_bytes(b"email\\na@x.io\\nb@x.io")
        >>> estimated_rows(p)
        2
    """
    lines = 0
    last = b"\n"
    try:
        with path.open("rb") as fh:
            # ~1 GB/s: a million-row export costs a tenth of a second, the bar its total.
            while block := fh.read(1 << 20):
                lines += block.count(b"\n")
                last = block[-1:]
    except OSError:
        return None
    if last != b"\n":
        lines += 1  # no line end after the last record
    return max(lines - 1, 0)  # the header
