"""Cache expiry durations: ISO 8601 and SageMaker's short forms, normalized; calendar arithmetic; clear errors."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_pipelines.durations import Duration, DurationError, parse_duration
from jupyter_pipelines.errors import PipelineError


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        # ISO 8601
        ("P30D", "P30D"),
        ("PT1H", "PT1H"),
        ("P1Y2M10DT2H30M", "P1Y2M10DT2H30M"),
        ("P2W", "P2W"),
        ("PT30S", "PT30S"),
        ("P1DT1S", "P1DT1S"),
        ("PT90M", "PT90M"),  # not carried into hours: the form is kept
        ("P0Y0M30D", "P30D"),  # zero parts dropped
        ("P007D", "P7D"),
        ("P1W2D", "P9D"),  # weeks mixed with other units become days
        ("P1WT1H", "P7DT1H"),
        ("P0D", "P0D"),
        ("PT0S", "P0D"),
        # SageMaker's short forms (no P, lower case)
        ("30d", "P30D"),
        ("5y", "P5Y"),
        ("T16m", "PT16M"),
        ("30dT5h", "P30DT5H"),
        ("2w", "P2W"),
        ("1y6m", "P1Y6M"),  # m after y is months, as in ISO 8601
        ("t45s", "PT45S"),
        # case-insensitive, surrounding blanks ignored
        ("p30d", "P30D"),
        ("pt1h", "PT1H"),
        ("30D", "P30D"),
        (" P1M ", "P1M"),
    ],
)
def test_accepted_forms_normalize_to_iso(text: str, iso: str) -> None:
    duration = parse_duration(text)
    assert duration.iso == iso
    assert str(duration) == iso
    assert parse_duration(iso) == parse_duration(duration.iso)


def test_components() -> None:
    assert parse_duration("P1Y2M3W4DT5H6M7S") == Duration(1, 2, 3, 4, 5, 6, 7)
    assert parse_duration("30dT5h") == Duration(days=30, hours=5)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("P", "numbers followed by units"),
        ("PT", "numbers followed by units"),
        ("T", "numbers followed by units"),
        ("P1DT", "'T' must be followed by hours, minutes or seconds"),
        ("30", "numbers followed by units"),
        ("D30", "numbers followed by units"),
        ("P1D1Y", "numbers followed by units"),  # out of order
        ("P1D2D", "numbers followed by units"),  # twice
        ("P1D T1H", "numbers followed by units"),
        ("P1H", "hours, minutes and seconds come after a 'T'"),
        ("1h", "hours, minutes and seconds come after a 'T'"),
        ("30d5h", "hours, minutes and seconds come after a 'T'"),
        ("10s", "hours, minutes and seconds come after a 'T'"),
        ("90m", "SageMaker reads it as 90 months"),
        ("5M", "SageMaker reads it as 5 months"),
        ("PT1.5H", "use whole numbers"),
        ("P0,5D", "use whole numbers"),
        ("-P1D", "cannot be negative"),
        ("P-1D", "numbers followed by units"),
        ("P1001Y", "longer than 1000 years"),
        ("P12001M", "longer than 1000 years"),
        ("P1000YT1S", "longer than 1000 years"),
        ("P99999999999999999999D", "longer than 1000 years"),
        ("P１D", "numbers followed by units"),  # a full-width digit
        ("PT1ſ", "numbers followed by units"),  # no Unicode case folding: the long s is not an S
        ("30 days", "numbers followed by units"),
        ("1 day", "numbers followed by units"),
    ],
)
def test_malformed_names_the_text_and_the_accepted_forms(text: str, problem: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    message = str(caught.value)
    assert isinstance(caught.value, PipelineError)
    assert problem in message
    assert repr(text.strip() or text) in message
    if "SageMaker reads it" not in message and "longer" not in message:
        assert re.search(r"PT1H|P30D", message), message  # an example of what to write


def test_ambiguous_months_suggest_both_readings() -> None:
    with pytest.raises(DurationError, match=r"Write P90M for 90 months or T90m for 90 minutes"):
        parse_duration("90m")
    assert parse_duration("P90M").iso == "P90M"
    assert parse_duration("T90m").iso == "PT90M"


def test_generic_error_lists_iso_and_short_form_examples() -> None:
    message = str(pytest.raises(DurationError, parse_duration, "soon").value)
    for example in ("P30D", "PT1H", "P1Y2M10DT2H30M", "P2W", "30d", "5y", "T16m", "30dT5h"):
        assert example in message


def test_long_text_is_shortened_in_the_message() -> None:
    message = str(pytest.raises(DurationError, parse_duration, "x" * 5000).value)
    assert len(message) < 600
    assert "xxx..." in message


def test_limit_is_exactly_1000_years() -> None:
    assert parse_duration("P1000Y").iso == "P1000Y"
    assert parse_duration("P12000M").iso == "P12000M"


# ---- measuring -----------------------------------------------------------------------------------------------------


def test_fixed_units_do_not_need_a_start() -> None:
    assert parse_duration("PT1H").seconds() == 3600
    assert parse_duration("P2W").seconds() == 14 * 86400
    assert parse_duration("P1DT1H1M1S").seconds(None) == 86400 + 3661
    assert parse_duration("P0D").seconds() == 0
    started = datetime(2024, 3, 1, 12, 0)
    assert parse_duration("30dT5h").expires(started) == started + timedelta(days=30, hours=5)


def test_months_and_years_are_calendar_units() -> None:
    month = parse_duration("P1M")
    assert month.calendar and not parse_duration("P30D").calendar
    assert month.expires(datetime(2024, 1, 31)) == datetime(2024, 2, 29)  # clamped to the month's end (leap year)
    assert month.expires(datetime(2023, 1, 31)) == datetime(2023, 2, 28)
    assert month.seconds(datetime(2024, 2, 1)) == 29 * 86400
    assert month.seconds(datetime(2023, 2, 1)) == 28 * 86400
    assert parse_duration("P1Y").seconds(datetime(2024, 1, 1)) == 366 * 86400
    assert parse_duration("P1Y").seconds(datetime(2023, 1, 1)) == 365 * 86400
    assert parse_duration("P1Y2M10DT2H30M").expires(datetime(2024, 1, 1)) == datetime(2025, 3, 11, 2, 30)


def test_calendar_seconds_without_a_start_measure_from_now() -> None:
    assert 28 * 86400 <= parse_duration("P1M").seconds() <= 31 * 86400


def test_expires_keeps_the_time_zone_and_saturates_at_the_end_of_time() -> None:
    started = datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert parse_duration("PT1H").expires(started) == datetime(2024, 5, 1, 1, tzinfo=timezone.utc)
    assert parse_duration("P1000Y").expires(datetime(9500, 1, 1)) == datetime.max
    late = datetime(9500, 1, 1, tzinfo=timezone.utc)
    assert parse_duration("P52000W").expires(late) == datetime.max.replace(tzinfo=timezone.utc)


def test_duration_is_frozen_and_hashable() -> None:
    duration = parse_duration("30d")
    with pytest.raises(AttributeError):
        duration.days = 1  # type: ignore[misc]
    assert {duration, parse_duration("P30D")} == {duration}


# ---- properties ----------------------------------------------------------------------------------------------------

_part = st.one_of(st.none(), st.integers(min_value=0, max_value=99))


@st.composite
def _written(draw: st.DrawFn) -> str:
    """Any accepted spelling: with or without P, either case, any components (at least one)."""
    values = [draw(_part) for _ in range(7)]
    if not any(v is not None for v in values):
        values[3] = draw(st.integers(min_value=0, max_value=99))
    units = "YMWDHMS"
    date = "".join(f"{v}{u}" for v, u in zip(values[:4], units[:4]) if v is not None)
    time = "".join(f"{v}{u}" for v, u in zip(values[4:], units[4:]) if v is not None)
    text = date + ("T" + time if time else "")
    prefix = draw(st.sampled_from(["P", "p", ""]))
    if not prefix and re.fullmatch(r"[0-9]+M", text):
        prefix = "P"  # a bare month count is rejected as ambiguous
    text = prefix + text
    return draw(st.sampled_from([text, text.lower(), text.upper()]))


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_arbitrary_text_gives_a_duration_or_a_duration_error(text: str) -> None:
    try:
        duration = parse_duration(text)
    except DurationError:
        return
    assert parse_duration(duration.iso).iso == duration.iso


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="PpTtYyMmWwDdHhSs0123456789.,- ", max_size=16))
def test_duration_like_text_gives_a_duration_or_a_duration_error(text: str) -> None:
    try:
        duration = parse_duration(text)
    except DurationError:
        return
    assert parse_duration(duration.iso) == duration or "W" in text.upper()  # weeks may have become days
    assert parse_duration(duration.iso).iso == duration.iso


@settings(max_examples=500, deadline=None)
@given(_written(), st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)))
def test_accepted_spellings_round_trip_and_measure_the_same(text: str, started: datetime) -> None:
    duration = parse_duration(text)
    again = parse_duration(duration.iso)
    assert again.iso == duration.iso
    assert re.fullmatch(r"P(?:[0-9]+[YMWD])*(?:T(?:[0-9]+[HMS])+)?", duration.iso)
    assert again.expires(started) == duration.expires(started) >= started
    assert again.seconds(started) == duration.seconds(started) >= 0
