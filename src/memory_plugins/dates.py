"""Resolve the dates a chat message mentions to absolute dates, without an LLM.

"I saw her last Friday" written on Monday 2023-05-08 becomes 2023-05-05, so a
memory stored today still means the right day when it is read a year later.

This runs on the hot write path, so it is one precompiled regex plus a little
arithmetic per match; text without date words costs a single regex scan.

Conventions (deterministic on purpose; an LLM can refine later if it wants):

* Weeks run Monday to Sunday.
* "last Friday" is the most recent Friday strictly before the reference day,
  "next Friday" the first Friday strictly after it.
* "this Friday" and "on Friday" are the Friday of the reference day's week,
  which may already be past ("on Monday" said on a Wednesday is two days ago).
* "last/this/next weekend" is the Saturday of the previous/current/next week.
* Named periods ("last week", "May 2023", "in 2022") resolve to the period's
  first day. Offsets ("two weeks ago", "a month ago") resolve to the exact
  shifted day, with ``granularity`` recording the unit the speaker used, since
  "a month ago" is only as precise as a month. ``iso`` always truncates
  ``date`` to ``granularity``.
* Month arithmetic clamps the day: Mar 31 minus a month is Feb 28 (or 29).
* A month name alone is never a date ("May I ask", "we march on"): it needs a
  day number or a year beside it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DateMention", "find_dates"]


@dataclass(frozen=True, slots=True)
class DateMention:
    """One date phrase found in a text, resolved against the message time."""

    start: int  # char span of the phrase in the input text
    end: int
    phrase: str  # the text as written, e.g. "last Friday"
    date: dt.date  # resolved day; for named ranges the range's first day
    granularity: str  # "day", "week", "month" or "year"
    relative: bool = True  # resolved against the message time ("yesterday", not "3 May")

    @property
    def iso(self) -> str:
        """The date at its granularity: 2023-05-07, 2023-05-01 (week start), 2023-05, 2023."""
        if self.granularity == "year":
            return f"{self.date.year:04d}"
        if self.granularity == "month":
            return f"{self.date.year:04d}-{self.date.month:02d}"
        if self.granularity == "week":
            return _monday(self.date).isoformat()
        return self.date.isoformat()


# --- regex building blocks --------------------------------------------------
# Compiled with re.ASCII: \b, \d and case-folding then only concern ASCII, so a
# stray long s (U+017F) or Kelvin sign can't case-fold into a month name and break the
# lookups below, and "昨天yesterday" still finds "yesterday".

_SP = r"[\s\u00a0]+"  # chat text often carries non-breaking spaces
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        (
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
        ),
        start=1,
    )
}
# Optional suffixes are greedy and every rule ends in \b, so "Mar", "March" and
# "Marching" (no match) all come out right.
_MONTH = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_DAY = r"[0-9]{1,2}(?:st|nd|rd|th)?(?![0-9])"
_YEAR = r"[0-9]{4}"
# "a"/"an" = 1, "a couple (of)" = 2, "a few" = 3.
_COUNT = r"[0-9]{1,4}|" + "|".join(_NUMBER_WORDS) + rf"|an?(?:{_SP}(?:couple(?:{_SP}of)?|few))?"
_UNIT = r"(?:day|week|month|year)s?"
_WEEKDAY_ABBR = r"mon|tues?|wed|thu(?:rs?)?|fri|sat|sun"
_REL = r"last|this|next"

_Resolved = tuple[dt.date, str]
_Resolver = Callable[[re.Match[str], dt.date], _Resolved]


# --- date arithmetic --------------------------------------------------------


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _add_months(day: dt.date, months: int) -> dt.date:
    # Clamp rather than overflow: Mar 31 - 1 month must be Feb 28/29, not Mar 3.
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return dt.date(year, month0 + 1, min(day.day, last_day))


def _shift(today: dt.date, count: int, unit: str) -> _Resolved:
    unit = unit.lower().rstrip("s")
    if unit == "day":
        return today + dt.timedelta(days=count), "day"
    if unit == "week":
        return today + dt.timedelta(weeks=count), "week"
    if unit == "month":
        return _add_months(today, count), "month"
    return _add_months(today, 12 * count), "year"


def _count(words: str) -> int:
    tokens = words.lower().split()
    if tokens[0].isdigit():
        return int(tokens[0])
    if "couple" in tokens:
        return 2
    if "few" in tokens:
        return 3
    return _NUMBER_WORDS.get(tokens[0], 1)  # otherwise it is "a" / "an"


def _step(relation: str) -> int:
    return {"last": -1, "this": 0, "next": 1}[relation.lower()]


def _month_number(name: str) -> int:
    return _MONTHS[name[:3].lower()]


def _year_or(text: str | None, default: int) -> int:
    return int(text) if text else default


# --- rules: (name, pattern, resolver), tried in this order at each position --


def _iso(m: re.Match[str], today: dt.date) -> _Resolved:
    return dt.date(int(m["iso_y"]), int(m["iso_m"]), int(m["iso_d"])), "day"


def _relative_day(m: re.Match[str], today: dt.date) -> _Resolved:
    phrase = " ".join(m[0].lower().split())
    offset = {
        "the day before yesterday": -2,
        "day before yesterday": -2,
        "the day after tomorrow": 2,
        "day after tomorrow": 2,
        "yesterday": -1,
        "last night": -1,
        "tomorrow": 1,
    }.get(phrase, 0)  # today, tonight, this morning/afternoon/evening
    return today + dt.timedelta(days=offset), "day"


def _weekend(m: re.Match[str], today: dt.date) -> _Resolved:
    return _monday(today) + dt.timedelta(days=5 + 7 * _step(m["we_rel"])), "day"


def _weekday(m: re.Match[str], today: dt.date) -> _Resolved:
    target = _weekday_number(m["wd_day"] or m["wd_abbr"])
    relation = (m["wd_rel"] or m["wd_rel2"]).lower()
    if relation == "last":  # strictly before today, so 1..7 days back
        return today - dt.timedelta(days=(today.weekday() - target) % 7 or 7), "day"
    if relation == "next":  # strictly after today, so 1..7 days ahead
        return today + dt.timedelta(days=(target - today.weekday()) % 7 or 7), "day"
    return _monday(today) + dt.timedelta(days=target), "day"  # "this"/"on": this week


def _weekday_number(name: str) -> int:
    return [day[:3] for day in _WEEKDAYS].index(name[:3].lower())


def _weekend_ago(m: re.Match[str], today: dt.date) -> _Resolved:
    """ "two weekends ago": the Saturday of the week that many weeks back."""
    return _monday(today) + dt.timedelta(days=5 - 7 * _count(m["wa_n"])), "day"


def _period(m: re.Match[str], today: dt.date) -> _Resolved:
    step, unit = _step(m["p_rel"]), m["p_unit"].lower()
    if unit == "week":
        return _monday(today) + dt.timedelta(weeks=step), "week"
    if unit == "month":
        return _add_months(today.replace(day=1), step), "month"
    return dt.date(today.year + step, 1, 1), "year"


def _ago(m: re.Match[str], today: dt.date) -> _Resolved:
    sign = -1 if m["ago_dir"].lower() == "ago" else 1  # else "from now"
    return _shift(today, sign * _count(m["ago_n"]), m["ago_u"])


def _in_offset(m: re.Match[str], today: dt.date) -> _Resolved:
    return _shift(today, _count(m["in_n"]), m["in_u"])


def _in_year(m: re.Match[str], today: dt.date) -> _Resolved:
    return dt.date(int(m["iy_y"]), 1, 1), "year"


def _month_day(m: re.Match[str], today: dt.date) -> _Resolved:
    day = int(m["md_d"].rstrip("stndrhSTNDRH"))
    return dt.date(_year_or(m["md_y"], today.year), _month_number(m["md_m"]), day), "day"


def _day_month(m: re.Match[str], today: dt.date) -> _Resolved:
    day = int(m["dm_d"].rstrip("stndrhSTNDRH"))
    return dt.date(_year_or(m["dm_y"], today.year), _month_number(m["dm_m"]), day), "day"


def _month_year(m: re.Match[str], today: dt.date) -> _Resolved:
    return dt.date(int(m["my_y"]), _month_number(m["my_m"]), 1), "month"


# Order matters only between rules that can start at the same character:
# "in 2 weeks" before "in 2022", "May 7" before "May 2023", "the day before
# yesterday" before "yesterday" (it starts earlier, so it wins regardless).
_RULES: list[tuple[str, str, _Resolver]] = [
    # No trailing \b, so "2023-05-07T10:00" still counts; 2023/05/07 too.
    (
        "iso",
        r"(?P<iso_y>[0-9]{4})(?P<iso_sep>[-/])(?P<iso_m>[0-9]{1,2})(?P=iso_sep)"
        r"(?P<iso_d>[0-9]{1,2})(?![0-9])",
        _iso,
    ),
    (
        "relday",
        rf"(?:(?:the{_SP})?day{_SP}(?:before{_SP}yesterday|after{_SP}tomorrow)"
        rf"|today|tonight|yesterday|tomorrow|last{_SP}night"
        rf"|this{_SP}(?:morning|afternoon|evening))\b",
        _relative_day,
    ),
    ("weekend", rf"(?P<we_rel>{_REL}){_SP}weekend\b", _weekend),
    (
        "weekday",
        rf"(?:(?P<wd_rel>{_REL}|on){_SP}(?P<wd_day>{'|'.join(_WEEKDAYS)})"
        # Abbreviations ("last Fri") only after last/this/next: "on sat" may be a verb.
        rf"|(?P<wd_rel2>{_REL}){_SP}(?P<wd_abbr>{_WEEKDAY_ABBR})\.?)\b",
        _weekday,
    ),
    ("weekend_ago", rf"(?P<wa_n>{_COUNT}){_SP}weekends?{_SP}ago\b", _weekend_ago),
    ("period", rf"(?P<p_rel>{_REL}){_SP}(?P<p_unit>week|month|year)\b", _period),
    (
        "ago",
        rf"(?P<ago_n>{_COUNT}){_SP}(?P<ago_u>{_UNIT}){_SP}(?P<ago_dir>ago|from{_SP}now)\b",
        _ago,
    ),
    ("in_offset", rf"in{_SP}(?P<in_n>{_COUNT}){_SP}(?P<in_u>{_UNIT})\b", _in_offset),
    # Bare years only after "in" and only 1900-2099, else every number is a year;
    # "in 2023-05-07" is left to the ISO rule.
    ("in_year", rf"in{_SP}(?P<iy_y>(?:19|20)[0-9]{{2}})\b(?![-/][0-9])", _in_year),
    (
        "month_day",
        rf"(?P<md_m>{_MONTH})\.?{_SP}(?P<md_d>{_DAY})(?:,?{_SP}(?P<md_y>{_YEAR}))?\b",
        _month_day,
    ),
    (
        "day_month",
        rf"(?P<dm_d>{_DAY}){_SP}(?:of{_SP})?(?P<dm_m>{_MONTH})\.?"
        rf"(?:,?{_SP}(?P<dm_y>{_YEAR}))?\b",
        _day_month,
    ),
    ("month_year", rf"(?P<my_m>{_MONTH})\.?,?{_SP}(?:of{_SP})?(?P<my_y>{_YEAR})\b", _month_year),
]

# Every rule starts with a digit or one of these words. Checking the first
# character in a lookahead lets the engine reject most positions before trying
# eleven alternatives: it halves the cost of scanning date-free text.
_LEAD_WORDS = (
    "the",
    "day",
    "today",
    "tonight",
    "yesterday",
    "tomorrow",
    "last",
    "this",
    "next",
    "on",
    "in",
    "a",
    *_NUMBER_WORDS,
    *_MONTHS,
)
_LEAD_CHARS = "0-9" + "".join(sorted({word[0] for word in _LEAD_WORDS}))
# Each rule is one named group, so match.lastgroup names the rule that matched
# (the outer group closes last, after any named groups nested inside it).
_PATTERN = re.compile(
    rf"(?=[{_LEAD_CHARS}])\b(?:"
    + "|".join(f"(?P<{name}>{pattern})" for name, pattern, _ in _RULES)
    + ")",
    re.IGNORECASE | re.ASCII,
)
_RESOLVERS: dict[str, _Resolver] = {name: resolver for name, _, resolver in _RULES}


def find_dates(text: str, reference: dt.datetime) -> list[DateMention]:
    """Find date phrases in ``text`` and resolve them against ``reference``.

    ``reference`` is the message's timestamp; its own calendar day (in its own
    timezone, if any) is "today". Mentions come back in order of appearance and
    never overlap. Never raises for any ``str``: phrases that look like dates but
    are not (Feb 30, 10000 years ago) are skipped.
    """
    today = reference.date()
    mentions: list[DateMention] = []
    for match in _PATTERN.finditer(text):
        resolver = _RESOLVERS.get(match.lastgroup or "")
        if resolver is None:  # unreachable: every alternative is a named rule
            continue
        try:
            day, granularity = resolver(match, today)
        except (ValueError, OverflowError):  # out-of-range day, month or year
            continue
        mentions.append(DateMention(match.start(), match.end(), match[0], day, granularity,
                                    match.lastgroup not in _ABSOLUTE_RULES))
    return mentions


_ABSOLUTE_RULES = frozenset({"iso", "in_year", "month_day", "day_month", "month_year"})


def human(mention: DateMention) -> str:
    """A resolved date as people write it: 7 May 2023, the week of 1 May 2023,
    May 2023, 2023."""
    d = mention.date
    if mention.granularity == "year":
        return str(d.year)
    if mention.granularity == "month":
        return f"{d:%B} {d.year}"
    if mention.granularity == "week":
        monday = _monday(d)
        return f"the week of {monday.day} {monday:%B} {monday.year}"
    return f"{d.day} {d:%B} {d.year}"


def annotate(text: str, reference: dt.datetime) -> str:
    """``text`` with each relative date phrase followed by its resolved date:
    "I went there yesterday (7 May 2023)." Absolute dates are left as written."""
    out, at = [], 0
    for m in find_dates(text, reference):
        if m.relative:
            out += [text[at : m.end], f" ({human(m)})"]
            at = m.end
    return "".join(out) + text[at:] if out else text
