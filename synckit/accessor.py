"""``df.synckit``: validate and upsert straight from a DataFrame.

A pandas DataFrame accessor named ``synckit``, registered as soon as
``synckit.read_csv`` or ``synckit.validate`` is first used (or on ``import
synckit.accessor``), so a notebook can chain from the frame it already has::

    check = df.synckit.validate(default_region="GB")
    plan = df.synckit.upsert(client, dry_run=True)
    report = df.synckit.upsert(client, progress=True)

Each method is the library call with the frame as its first argument
(:func:`synckit.validate`, :func:`synckit.upsert`); nothing here has logic of
its own, so the accessor and the functions can never disagree. The heavy
modules (validation, HTTP, sync engine) load on first use, not on import.

Example:
    >>> import pandas as pd
    >>> import synckit.accessor  # noqa: F401
    >>> df = pd.DataFrame({"email": ["ada@example.com", "not-an-email"]})
    >>> df.synckit.validate().errors["code"].tolist()
    ['invalid_email']
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from synckit.client import Client
    from synckit.report import SyncReport
    from synckit.validation import Validation

__all__ = ["SynckitAccessor"]

ACCESSOR_NAME = "synckit"


class SynckitAccessor:
    """The ``df.synckit`` namespace: :meth:`validate`, :meth:`upsert`, :meth:`dry_run`.

    Example:
        >>> import pandas as pd
        >>> import synckit.accessor  # noqa: F401
        >>> pd.DataFrame({"email": ["ada@example.com"]}).synckit.validate().valid.shape[0]
        1
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def validate(self, **options: Any) -> Validation:
        """Check every row locally, as :func:`synckit.validate` does (same options).

        Example:
            >>> import pandas as pd
            >>> import synckit.accessor  # noqa: F401
            >>> pd.DataFrame({"phone_number": ["020 7946 0018"]}).synckit.validate(
            ...     default_region="GB").valid["phone_number"].tolist()
            ['+442079460018']
        """
        from synckit.validation import validate

        return validate(self._frame, **options)

    def upsert(self, client: Client, **options: Any) -> SyncReport:
        """Validate and upsert the rows through ``client``, as :func:`synckit.upsert` does.

        Every keyword (``dry_run``, ``progress``, ``state``, ``batch_size``,
        ``allow_resubscribe``, ...) is passed on unchanged.

        Example:
            >>> report = df.synckit.upsert(client, progress=False)  # doctest: +SKIP
            >>> report.summary()  # doctest: +SKIP
        """
        from synckit.sync import upsert

        return upsert(self._frame, client, **options)

    def dry_run(self, client: Client, **options: Any) -> SyncReport:
        """The plan without a single write: ``upsert(..., dry_run=True)``.

        Statuses are ``would_create``, ``would_update`` (``changes`` lists the
        fields), ``unchanged`` and ``invalid``.

        Example:
            >>> plan = df.synckit.dry_run(client)  # doctest: +SKIP
            >>> plan.rows["status"].value_counts()  # doctest: +SKIP
        """
        if "dry_run" in options:
            raise TypeError("dry_run() is always a dry run; use upsert(dry_run=...) instead")
        return self.upsert(client, dry_run=True, **options)


def _register() -> None:
    current = getattr(pd.DataFrame, ACCESSOR_NAME, None)
    with warnings.catch_warnings():
        if getattr(current, "__module__", None) == __name__:
            # A reload (importlib.reload in a notebook) re-registers the same
            # accessor; pandas would warn about overriding "an attribute".
            warnings.simplefilter("ignore", UserWarning)
        pd.api.extensions.register_dataframe_accessor(ACCESSOR_NAME)(SynckitAccessor)


_register()
