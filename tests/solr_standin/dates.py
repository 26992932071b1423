"""Solr dates: ISO-8601 instants in UTC with a trailing Z, millisecond precision, date math.

Values are parsed into aware datetimes truncated to milliseconds and written back as
Solr writes them ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00.123Z"). Date math covers
NOW, `+N UNIT`, `-N UNIT` and rounding with `/UNIT`, as in `NOW/DAY-7DAYS`.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re

from .errors import SolrError

_INSTANT = re.compile(r"(\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z")
_MATH = re.compile(r"([+-])(\d+)([A-Z]+)|/([A-Z]+)")
_UNITS = {"YEAR": "year", "YEARS": "year", "MONTH": "month", "MONTHS": "month", "DAY": "day",
          "DAYS": "day", "DATE": "day", "HOUR": "hour", "HOURS": "hour", "MINUTE": "minute",
          "MINUTES": "minute", "SECOND": "second", "SECONDS": "second", "MILLI": "milli",
          "MILLIS": "milli", "MILLISECOND": "milli", "MILLISECONDS": "milli"}


def _invalid(text: str) -> SolrError:
    return SolrError(400, f"Invalid Date String:'{text}'")


def _truncate_ms(value: dt.datetime) -> dt.datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _add_months(value: dt.datetime, months: int) -> dt.datetime:
    total = value.year * 12 + value.month - 1 + months
    year, month = divmod(total, 12)
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def _round(value: dt.datetime, unit: str) -> dt.datetime:
    fields = ["month", "day", "hour", "minute", "second", "microsecond"]
    floor = {"month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0, "microsecond": 0}
    start = {"year": 0, "month": 1, "day": 2, "hour": 3, "minute": 4, "second": 5, "milli": 6}[unit]
    return value.replace(**{name: floor[name] for name in fields[start:]})


def parse_date(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """An instant from `text` (ISO with Z, or NOW, each optionally followed by date math)."""
    text = text.strip()
    if text.startswith("NOW"):
        base = _truncate_ms(now or dt.datetime.now(dt.timezone.utc))
        rest = text[3:]
    else:
        match = _INSTANT.match(text)
        if not match:
            raise _invalid(text)
        year, month, day, hour, minute, second, fraction = match.groups()
        try:
            base = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                               int((fraction or "0").ljust(6, "0")[:6]) // 1000 * 1000, tzinfo=dt.timezone.utc)
        except ValueError:
            raise _invalid(text) from None
        rest = text[match.end():]
    position = 0
    while position < len(rest):
        step = _MATH.match(rest, position)
        if not step:
            raise _invalid(text)
        sign, amount, unit_name, round_unit = step.groups()
        unit = _UNITS.get(unit_name or round_unit)
        if unit is None:
            raise _invalid(text)
        if round_unit:
            base = _round(base, unit)
        else:
            n = int(amount) * (1 if sign == "+" else -1)
            if unit == "year":
                base = _add_months(base, 12 * n)
            elif unit == "month":
                base = _add_months(base, n)
            else:
                base += dt.timedelta(**{"day": {"days": n}, "hour": {"hours": n}, "minute": {"minutes": n},
                                        "second": {"seconds": n}, "milli": {"milliseconds": n}}[unit])
        position = step.end()
    return base


def format_date(value: dt.datetime) -> str:
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text + "Z"
