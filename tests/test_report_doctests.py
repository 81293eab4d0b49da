"""The examples in the docstrings of report, the ledger, config, the runs command and the
sync engine run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name",
    [
        "synckit.report",
        "synckit.ledger",
        "synckit.config",
        "synckit.cli._runs",
        "synckit._rows",
        "synckit.sync",
        "synckit.sync.source",
        "synckit.sync.discover",
        "synckit.sync.plan",
        "synckit.sync.flows",
        "synckit.sync.outcome",
        "synckit.sync.execute",
        "synckit.sync.preflight",
        "synckit._headers",
        "synckit.sync.record",
        "synckit._files",
        "synckit._secrets",
    ],
)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
