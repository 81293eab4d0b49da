"""validate()'s value options: defaults, value maps, a country column, multi-value cells,
invalid_fields="drop"; and the same through `synckit validate` and `synckit sync`."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import synckit
from synckit import rules
from synckit.cli import main
from synckit.errors import ConfigError
from synckit.sandbox import Sandbox
from synckit.validation import Validation, to_payloads


def found(check: Validation) -> list[tuple[int, str, str, str]]:
    cols = ["row", "field", "code", "severity"]
    return [tuple(x) for x in check.errors[cols].values.tolist()]  # type: ignore[misc]


# ---------------------------------------------------------------------------
# defaults and value maps


def test_defaults_fill_empty_cells_and_missing_columns() -> None:
    df = pd.DataFrame(
        {
            "email": ["a@example.com", "b@example.com", "c@example.com"],
            "email_consent": [None, " ", "unsubscribed"],
        }
    )
    check = synckit.validate(
        df,
        defaults={"email_consent": "Subscribed", "first_name": "Friend", "custom.source": "shop"},
    )
    assert check.ok
    # a value in the file wins; the default is normalised like a cell
    assert check.valid["email_consent"].tolist() == ["subscribed", "subscribed", "unsubscribed"]
    assert check.valid["first_name"].tolist() == ["Friend"] * 3
    # custom fields stay columns until sent (issue 14); the bodies carry the object
    assert check.valid["custom.source"].tolist() == ["shop"] * 3
    bodies = [body for _, body in to_payloads(check.valid)]
    assert [b["custom_fields"] for b in bodies] == [{"source": "shop"}] * 3


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        ({"email": "x@example.com"}, "never constant"),
        ({"phone_number": "+14155552671"}, "never constant"),
        ({"email_consent": "yes"}, "must be one of: subscribed"),
        ({"nickname": "x"}, "cannot set 'nickname'"),
        ({"first_name": ""}, "needs a text value"),
        ({"last_name": "x" * 101}, "at most 100 characters"),
    ],
)
def test_bad_defaults_are_config_errors(defaults: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        synckit.validate(pd.DataFrame({"email": ["a@example.com"]}), defaults=defaults)


def test_value_maps_are_explicit_and_nothing_is_guessed() -> None:
    df = pd.DataFrame(
        {
            "email": [f"p{i}@example.com" for i in range(5)],
            "email_consent": ["Yes", " YES ", "no", "opted out", None],
            "sms_consent": ["no", None, None, None, None],
        }
    )
    check = synckit.validate(
        df,
        values={
            "email_consent": {"yes": "subscribed", "no": "never subscribed"},
            "sms_consent": {"no": None},
        },
    )
    # "opted out" is in no map: still an error, with the value as given
    assert found(check) == [(5, "email_consent", "invalid_choice", "error")]
    assert check.errors["value"].tolist() == ["opted out"]
    assert check.valid["email_consent"].tolist() == [
        "subscribed",
        "subscribed",
        "never_subscribed",
        None,
    ]
    assert check.valid["sms_consent"].tolist() == [None] * 4  # mapped to None: not sent
    with pytest.raises(ConfigError, match="must be one of"):
        synckit.validate(df, values={"email_consent": {"yes": "opted_in"}})
    with pytest.raises(ConfigError, match="cannot map the values of 'custom_fields'"):
        synckit.validate(df, values={"custom_fields": {"a": "b"}})


# ---------------------------------------------------------------------------
# a country column


def test_each_row_is_read_in_its_own_country() -> None:
    df = pd.DataFrame(
        {
            "phone_number": [
                "07400 123456",
                "030 12345678",
                "(415) 555-2671",
                "0412 345 678",
                "+33 6 12 34 56 78",
            ],
            "country": ["United Kingdom", "Deutschland", None, "Blighty", "GB"],
        }
    )
    check = synckit.validate(df, values={"country": {"blighty": "GB"}})
    # row 6: a country of GB does not change a number written with +33
    assert check.valid["phone_number"].to_dict() == {
        2: "+447400123456",
        3: "+493012345678",
        4: "+14155552671",
        6: "+33612345678",
    }
    # "Blighty" maps to GB, where 0412 345 678 is not valid (it is an AU mobile); a row
    # that names its country gets no other region's reading: its number is mistyped
    assert found(check) == [(5, "phone_number", "invalid_phone", "error")]
    assert check.n_default_region == 1  # row 4 only: no country
    assert "country" not in check.valid.columns  # never sent
    assert "country" not in check.ignored_columns


def test_unknown_country_warns_when_the_number_needed_it() -> None:
    df = pd.DataFrame(
        {"phone_number": ["(415) 555-2671", "+44 7400 123456"], "country": ["Narnia", "Narnia"]}
    )
    check = synckit.validate(df)
    assert check.ok
    # the +44 number did not need a country: no warning for it
    assert found(check) == [(2, "country", "unknown_country", "warning")]
    assert "read with default_region US" in check.errors["message"].iloc[0]
    assert check.errors["value"].tolist() == ["Narnia"]


def test_region_column_can_be_renamed_or_turned_off() -> None:
    df = pd.DataFrame({"phone_number": ["07400 123456"], "Land": ["GB"]})
    assert synckit.validate(df, region_column="Land").ok
    assert not synckit.validate(df).ok  # "Land" is just an ignored column here
    df = df.rename(columns={"Land": "country"})
    assert not synckit.validate(df, region_column=None).ok


# ---------------------------------------------------------------------------
# cells holding several values


@pytest.mark.parametrize(
    ("cell", "sent", "dropped"),
    [
        ("a@example.com ::: b@example.com", "a@example.com", "'b@example.com'"),
        ("bad@ ::: b@example.com", "b@example.com", "'bad@'"),
        ("a@example.com; b@example.com", "a@example.com", "'b@example.com'"),
        (
            "a@example.com, b@example.com, c@example.com",
            "a@example.com",
            "'b@example.com', 'c@example.com'",
        ),
        ("a@example.com\nb@example.com", "a@example.com", "'b@example.com'"),
    ],
)
def test_multi_value_email_keeps_the_first_valid(cell: str, sent: str, dropped: str) -> None:
    check = synckit.validate(pd.DataFrame({"email": [cell]}))
    assert check.ok and check.valid["email"].tolist() == [sent]
    assert found(check) == [(2, "email", "multiple_values", "warning")]
    assert check.errors["message"].iloc[0].endswith(f"sent {sent!r}; not sent: {dropped}")
    assert check.errors["value"].iloc[0] == cell


@pytest.mark.parametrize(
    ("cell", "code"),
    [
        ("a b@example.com", "invalid_email"),  # one mistyped address, not two values
        ("bad ::: worse", "invalid_email"),  # nothing valid: the cell is reported whole
    ],
)
def test_not_split_or_nothing_valid(cell: str, code: str) -> None:
    check = synckit.validate(pd.DataFrame({"email": [cell]}))
    assert [c for _, _, c, _ in found(check)] == [code]
    assert check.errors["value"].iloc[0] == cell


def test_multi_value_phone_uses_the_rows_country() -> None:
    df = pd.DataFrame(
        {
            "phone_number": [
                "N/A ::: 07400 123456",
                "(415) 555-2671 | (415) 555-2672",
                "030 / 12345678",
            ],
            "country": ["GB", None, "DE"],
        }
    )
    check = synckit.validate(df)
    assert check.valid["phone_number"].tolist() == [
        "+447400123456",
        "+14155552671",
        "+493012345678",
    ]
    # "030 / 12345678" is one German number: a slash never separates
    assert found(check) == [
        (2, "phone_number", "multiple_values", "warning"),
        (3, "phone_number", "multiple_values", "warning"),
    ]


# ---------------------------------------------------------------------------
# invalid_fields="drop"


def test_drop_sends_the_row_without_its_invalid_optional_fields() -> None:
    df = pd.DataFrame(
        {
            "email": ["a@example.com", "b@example.com", "bad@", "bad@", None],
            "phone_number": [
                "555-1234",
                "+14155552671",
                "+14155552672",
                "555-1234",
                "+14155552673",
            ],
            "first_name": ["Ada", "x" * 101, "Cy", "Di", "Ed"],
            "email_consent": ["subscribed", "yes", "subscribed", None, None],
            "sms_consent": ["subscribed", "single_opt_in", "subscribed", None, "maybe"],
        }
    )
    rejected = synckit.validate(df)
    assert rejected.n_valid == 0
    check = synckit.validate(df, invalid_fields="drop")
    # row 5 has only its phone: dropping its bad consent still leaves an identifier
    assert check.valid.index.tolist() == [2, 3, 4, 6]
    assert check.invalid.index.tolist() == [5]  # no valid email or phone would remain
    bodies = dict(to_payloads(check.valid))
    # row 2: the phone is dropped, and the SMS consent with it (never without its number)
    assert bodies[2] == {
        "email": "a@example.com",
        "first_name": "Ada",
        "email_consent": "subscribed",
    }
    assert bodies[3] == {
        "email": "b@example.com",
        "phone_number": "+14155552671",
        "sms_consent": "single_opt_in",
    }
    # row 4: the email is dropped, and the email consent with it
    assert bodies[4] == {
        "phone_number": "+14155552672",
        "first_name": "Cy",
        "sms_consent": "subscribed",
    }
    assert bodies[6] == {"phone_number": "+14155552673", "first_name": "Ed"}
    assert found(check) == [
        (2, "phone_number", "invalid_phone", "warning"),
        (2, "sms_consent", "sms_country", "warning"),
        (3, "email_consent", "invalid_choice", "warning"),
        (3, "first_name", "too_long", "warning"),
        (4, "email", "invalid_email", "warning"),
        (4, "email_consent", "field_dropped", "warning"),
        (5, "email", "invalid_email", "error"),
        (5, "phone_number", "invalid_phone", "error"),
        (6, "sms_consent", "invalid_choice", "warning"),  # a US number: SMS country fine
    ]
    keys = zip(check.errors["row"], check.errors["code"], strict=True)
    messages = dict(zip(keys, check.errors["message"], strict=True))
    assert messages[(2, "invalid_phone")] == rules.message("invalid_phone") + (
        "; the row is sent without this field (invalid_fields='drop')"
    )
    assert "email was left out" in messages[(4, "field_dropped")]
    assert check.n_errors == 2 and check.n_warnings == 7
    with pytest.raises(ConfigError, match="invalid_fields"):
        synckit.validate(df, invalid_fields="skip")  # type: ignore[arg-type]


def test_dropped_identifier_is_no_duplicate_key() -> None:
    df = pd.DataFrame(
        {"email": ["a@example.com", "b@example.com"], "phone_number": ["555-1234", "555-1234"]}
    )
    check = synckit.validate(df, invalid_fields="drop")
    assert check.n_valid == 2 and "duplicate_in_file" not in set(check.errors["code"])


# ---------------------------------------------------------------------------
# the same through the command line


def test_validate_cli_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "shop.csv"
    path.write_text(
        "Email,Accepts Email Marketing,Phone,Country\n"
        "a@example.com,yes,07400 123456,UK\n"
        "b@example.com,no,555-1234,\n"
    )
    errors = tmp_path / "errors.csv"
    code = main(
        ["validate", str(path), "--map", "Accepts Email Marketing=email_consent",
         "--value", "email_consent:yes=subscribed", "--value", "email_consent:no=never_subscribed",
         "--value", "country:UK=GB", "--set", "first_name=Friend", "--invalid-fields", "drop",
         "--errors", str(errors)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out  # row 3 is sent without its phone
    assert "2 rows: 2 valid, 0 invalid (0 errors, 1 warning)" in out
    assert re.search(r"phone_number +<- 'Phone'", out) and re.search(r"country +<- 'Country'", out)
    frame = pd.read_csv(errors, dtype=str)
    assert frame[["row", "code", "severity"]].values.tolist() == [["3", "invalid_phone", "warning"]]
    assert main(["validate", str(path), "--set", "email=x@example.com"]) == 2
    assert "never constant" in capsys.readouterr().err


def test_sync_cli_flags(
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "mailchimp.csv"
    path.write_text(
        "Email Address,First Name,Phone Number,CC\n"
        "a@example.com,Ada,07400 123456,GB\n"
        "b@example.com,Bob,555-1234,US\n"
    )
    monkeypatch.setenv("SYNCKIT_BASE_URL", sandbox.url)
    monkeypatch.setenv("SYNCKIT_TOKEN", sandbox.token)
    code = main(
        ["sync", str(path), "--set", "email_consent=subscribed", "--invalid-fields", "drop",
         "--no-progress", "--report", str(tmp_path / "r.csv")]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert "columns (Mailchimp layout)" not in captured.err  # no Mailchimp-only header here
    assert re.search(r"email +<- 'Email Address'", captured.err)
    stored = {c["email"]: c for c in sandbox.contacts()}
    assert stored["a@example.com"]["phone_number"] == "+447400123456"
    assert stored["a@example.com"]["email_consent"] == "subscribed"
    assert stored["b@example.com"]["phone_number"] is None  # dropped, the row still sent
    rows = synckit.SyncReport.read_csv(tmp_path / "r.csv")
    assert rows["status"].tolist() == ["created", "created"]


def test_sync_config_file_carries_the_value_options(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.csv"
    path.write_text("Email,Newsletter\na@example.com,Yes\n")
    config = tmp_path / "synckit.toml"
    config.write_text(
        '[sync]\nprogress = false\ninvalid_fields = "drop"\n'
        '[sync.map]\nNewsletter = "email_consent"\n'
        '[sync.value.email_consent]\nyes = "subscribed"\n'
        '[sync.set]\nfirst_name = "Friend"\n'
    )
    monkeypatch.setenv("SYNCKIT_BASE_URL", sandbox.url)
    monkeypatch.setenv("SYNCKIT_TOKEN", sandbox.token)
    assert main(["sync", str(path), "--config", str(config)]) == 0
    (contact,) = sandbox.contacts()
    assert (contact["email_consent"], contact["first_name"]) == ("subscribed", "Friend")


def test_upsert_takes_validate_options(sandbox: Sandbox) -> None:
    frame = synckit.read_csv(io.StringIO("Email,Mobile\na@example.com,555-1234\n"))
    with synckit.Client(sandbox.url, token=sandbox.token) as client:
        report = synckit.upsert(
            frame, client, progress=False, validate_options={"invalid_fields": "drop"}
        )
    assert report.rows["status"].tolist() == ["created"]
    warnings: Any = report.errors[report.errors["severity"] == "warning"]
    assert warnings["code"].tolist() == ["invalid_phone"]


def test_a_rows_errors_come_before_its_warnings(sandbox: Sandbox) -> None:
    # the email's warning comes first in rule order, but the row is rejected for its phone:
    # the report's row must name the error
    df = pd.DataFrame(
        {"email": ["a@example.com ::: b@example.com"], "phone_number": ["4.47911E+11"]}
    )
    check = synckit.validate(df)
    assert found(check) == [
        (2, "phone_number", "phone_scientific", "error"),
        (2, "email", "multiple_values", "warning"),
    ]
    with synckit.Client(sandbox.url, token=sandbox.token) as client:
        report = synckit.upsert(df, client, progress=False)
    assert report.rows[["status", "error_code"]].values.tolist() == [
        ["invalid", "phone_scientific"]
    ]
    assert report.errors["severity"].astype(str).tolist() == ["error", "warning"]


def test_drop_leaves_out_every_custom_field_of_a_row_with_a_nested_one() -> None:
    """Custom fields are columns until sent (issue 14): dropping them clears each column's cell."""
    df = pd.DataFrame(
        {
            "email": ["a@example.com", "b@example.com"],
            "custom_fields": ['{"tier": {"level": 2}}', '{"tier": "gold"}'],
            "custom.plan": ["pro", "free"],
        }
    )
    check = synckit.validate(df, invalid_fields="drop")
    assert check.ok
    bodies = dict(to_payloads(check.valid))
    assert bodies[2] == {"email": "a@example.com"}  # no custom_fields at all
    assert bodies[3] == {
        "email": "b@example.com",
        "custom_fields": {"tier": "gold", "plan": "free"},
    }
    # the broken rule stays reported, as a warning saying what was done
    assert check.errors[["row", "field", "code", "severity"]].values.tolist() == [
        [2, "custom_fields", "nested_custom_fields", "warning"]
    ]
    assert "sent without this field" in check.errors["message"].iat[0]
