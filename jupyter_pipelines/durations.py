"""Durations for cache expiry: ISO 8601 (``P30D``, ``PT1H``, ``P1Y2M10DT2H30M``, ``P2W``) and SageMaker's short forms.

SageMaker's ``CacheConfig.ExpireAfter`` takes any ISO 8601 duration and also lets the ``P`` go and the letters be
lower case: ``30d`` (thirty days), ``5y`` (five years), ``T16m`` (sixteen minutes), ``30dT5h`` (thirty days and five
hours). :func:`parse_duration` reads all of these and normalizes them to one ISO 8601 string (:attr:`Duration.iso`),
which is what authoring stores, the exporter writes and the engine compares.

What is accepted, case-insensitively: an optional ``P``, then whole numbers each followed by its unit -- ``Y``
(years), ``M`` (months), ``W`` (weeks), ``D`` (days) -- then optionally ``T`` and ``H`` (hours), ``M`` (minutes),
``S`` (seconds). At least one number; units in that order, each at most once. Not accepted, each with its own
message: fractions (``PT1.5H``: write ``PT1H30M``), hours/minutes/seconds without the ``T`` (``1h``: write ``T1h``),
a bare ``90m`` (SageMaker reads it as ninety *months*; write ``P90M`` for months or ``T90m`` for minutes), and
anything longer than 1000 years.

Years and months are calendar units: how many seconds ``P1M`` lasts depends on when it starts, so
:meth:`Duration.seconds` and :meth:`Duration.expires` take the start time (``isodate`` does the calendar arithmetic:
January 31 plus one month is the last day of February).

A leaf module: no I/O, nothing from this package but the error base class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import isodate

from .errors import PipelineError

__all__ = ["ACCEPTED_FORMS", "Duration", "DurationError", "parse_duration"]

ACCEPTED_FORMS = (
    "an ISO 8601 duration (P30D, PT1H, P1Y2M10DT2H30M, P2W) or SageMaker's short form (30d, 5y, T16m, 30dT5h): "
    "whole numbers with units y, m (months), w, d, then T and h, m (minutes), s"
)
_MAX_YEARS = 1000
_MONTH = 2_629_746  # seconds in an average Gregorian month (365.2425 days / 12), to bound the length
_MAX_DIGITS = 12  # more is surely a typo, and keeps int() and the range check trivially cheap

_NAMES = ("years", "months", "weeks", "days", "hours", "minutes", "secs")
_FORM = re.compile(
    r"(?P<p>P)?(?:(?P<years>[0-9]+)Y)?(?:(?P<months>[0-9]+)M)?(?:(?P<weeks>[0-9]+)W)?(?:(?P<days>[0-9]+)D)?"
    r"(?:(?P<t>T)(?:(?P<hours>[0-9]+)H)?(?:(?P<minutes>[0-9]+)M)?(?:(?P<secs>[0-9]+)S)?)?",
    re.IGNORECASE | re.ASCII,  # ASCII: no Unicode case folding ('ſ' is not 'S') and [0-9] only
)
_FRACTION = re.compile(r"[0-9][.,][0-9]", re.ASCII)
_TIME_WITHOUT_T = re.compile(r"P?(?:[0-9]+[YMWD])*[0-9]+[HS].*", re.IGNORECASE | re.ASCII)
_BARE_MONTHS = re.compile(r"[0-9]+M", re.IGNORECASE | re.ASCII)


class DurationError(PipelineError):
    """A duration that is not ISO 8601 nor one of SageMaker's short forms."""


@dataclass(frozen=True)
class Duration:
    """A non-negative duration made of calendar units (years, months) and fixed units (weeks down to seconds)."""

    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0
    secs: int = 0  # the seconds part (``seconds()`` measures the whole duration)

    @property
    def iso(self) -> str:
        """Normalized ISO 8601: upper case, zero parts dropped, ``P2W`` kept, weeks folded into days when mixed."""
        weeks, days = self.weeks, self.days
        if weeks and (self.years or self.months or days or self.hours or self.minutes or self.secs):
            weeks, days = 0, days + 7 * weeks  # ISO 8601 writes weeks alone (P2W) or not at all
        date = "".join(f"{n}{u}" for n, u in ((self.years, "Y"), (self.months, "M"), (weeks, "W"), (days, "D")) if n)
        time = "".join(f"{n}{u}" for n, u in ((self.hours, "H"), (self.minutes, "M"), (self.secs, "S")) if n)
        if not date and not time:
            return "P0D"
        return "P" + date + ("T" + time if time else "")

    @property
    def is_zero(self) -> bool:
        return self.iso == "P0D"

    @property
    def calendar(self) -> bool:
        """True when the length depends on the start (years or months)."""
        return bool(self.years or self.months)

    def _fixed(self) -> timedelta:
        return timedelta(weeks=self.weeks, days=self.days, hours=self.hours, minutes=self.minutes, seconds=self.secs)

    def expires(self, started: datetime) -> datetime:
        """When something started at ``started`` expires (naive or aware, as given; ``datetime.max`` at the limit)."""
        delta = isodate.Duration(years=self.years, months=self.months) + self._fixed()
        try:
            result = started + delta
        except (OverflowError, ValueError):  # past year 9999
            return datetime.max.replace(tzinfo=started.tzinfo)
        assert isinstance(result, datetime)
        return result

    def seconds(self, at: datetime | None = None) -> float:
        """Length in seconds when starting at ``at`` (only years and months need it; None means now, in UTC)."""
        if not self.calendar:
            return self._fixed().total_seconds()
        start = at if at is not None else datetime.now(timezone.utc)
        return (self.expires(start) - start).total_seconds()

    def __str__(self) -> str:
        return self.iso


def _error(text: str, problem: str, fix: str | None = None) -> DurationError:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return DurationError(f"{shown!r} is not a valid duration: {problem}.", hint=fix or f"Write {ACCEPTED_FORMS}.")


def parse_duration(text: str) -> Duration:
    """Read an ISO 8601 duration or a SageMaker short form (see the module docstring); raises DurationError."""
    stripped = text.strip()
    match = _FORM.fullmatch(stripped)
    numbers: list[str | None] = [match.group(name) for name in _NAMES] if match else []
    if match is None or not any(numbers):
        raise _explain(stripped or text)
    if match.group("t") and not any(numbers[4:]):
        raise _error(stripped, "'T' must be followed by hours, minutes or seconds", "Write e.g. PT1H or T16m.")
    if not match.group("p") and _BARE_MONTHS.fullmatch(stripped):
        count = int(numbers[1] or 0)
        raise _error(
            stripped,
            f"SageMaker reads it as {count} months, which is rarely what is meant",
            f"Write P{count}M for {count} months or T{count}m for {count} minutes.",
        )
    if any(n is not None and len(n) > _MAX_DIGITS for n in numbers):
        raise _too_long(stripped)
    years, months, weeks, days, hours, minutes, seconds = (int(n) if n else 0 for n in numbers)
    fixed_seconds = (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds
    if (years * 12 + months) * _MONTH + fixed_seconds > _MAX_YEARS * 12 * _MONTH:
        raise _too_long(stripped)
    return Duration(years, months, weeks, days, hours, minutes, seconds)


def _too_long(text: str) -> DurationError:
    return _error(
        text, f"it is longer than {_MAX_YEARS} years", "Leave the expiry out to keep a result until it is cleared."
    )


def _explain(text: str) -> DurationError:
    if not text.strip():
        return _error(text, "it is empty")
    if text.lstrip().startswith("-"):
        return _error(text, "durations cannot be negative")
    if _FRACTION.search(text):
        return _error(text, "use whole numbers", "Write PT1H30M rather than PT1.5H, or P1DT12H rather than P1.5D.")
    if _TIME_WITHOUT_T.fullmatch(text.strip()):
        return _error(
            text, "hours, minutes and seconds come after a 'T'", "Write e.g. T1h or PT1H for one hour, 30dT5h."
        )
    return _error(text, "expected numbers followed by units, in the order Y M W D T H M S")
