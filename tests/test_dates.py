"""Tests for memory_plugins.dates: resolving date phrases against a message time."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_plugins.dates import DateMention, annotate, find_dates

# A Monday afternoon: "this week" starts today, "last Monday" is a week ago.
REF = dt.datetime(2023, 5, 8, 13, 56)

# (sentence, the phrase find_dates should report, iso, granularity)
CASES = [
    # relative days
    ("What did you do today?", "today", "2023-05-08", "day"),
    ("Are you free tonight", "tonight", "2023-05-08", "day"),
    ("I ran this morning.", "this morning", "2023-05-08", "day"),
    ("Call me this evening", "this evening", "2023-05-08", "day"),
    ("Yesterday was rough", "Yesterday", "2023-05-07", "day"),
    ("I slept badly last night", "last night", "2023-05-07", "day"),
    ("Ship it tomorrow!", "tomorrow", "2023-05-09", "day"),
    ("I arrived the day before yesterday.", "the day before yesterday", "2023-05-06", "day"),
    ("We leave the day after tomorrow", "the day after tomorrow", "2023-05-10", "day"),
    # weekdays: last/next are strict, this/on are the current Mon-Sun week
    ("I saw her last Friday.", "last Friday", "2023-05-05", "day"),
    ("The demo was last Monday", "last Monday", "2023-05-01", "day"),
    ("Last Fri I took the kids out", "Last Fri", "2023-05-05", "day"),
    ("I joined the group last Tues.", "last Tues", "2023-05-02", "day"),
    ("We went camping two weekends ago.", "two weekends ago", "2023-04-29", "day"),
    ("Let's meet next Monday", "next Monday", "2023-05-15", "day"),
    ("Due next Friday.", "next Friday", "2023-05-12", "day"),
    ("Party this Saturday?", "this Saturday", "2023-05-13", "day"),
    ("Brunch on Sunday", "on Sunday", "2023-05-14", "day"),
    ("Standup is this Monday", "this Monday", "2023-05-08", "day"),
    ("Hiking last weekend was great", "last weekend", "2023-05-06", "day"),
    ("Any plans this weekend?", "this weekend", "2023-05-13", "day"),
    ("Visiting mum next weekend", "next weekend", "2023-05-20", "day"),
    # offsets
    ("I moved 3 days ago", "3 days ago", "2023-05-05", "day"),
    ("It broke a few days ago.", "a few days ago", "2023-05-05", "day"),
    ("Bought it a couple of days ago", "a couple of days ago", "2023-05-06", "day"),
    ("Started two weeks ago", "two weeks ago", "2023-04-24", "week"),
    ("We spoke a month ago", "a month ago", "2023-04", "month"),
    ("Graduated ten years ago", "ten years ago", "2013", "year"),
    ("That was eleven days ago", "eleven days ago", "2023-04-27", "day"),
    ("The release is in 2 weeks", "in 2 weeks", "2023-05-22", "week"),
    ("Renewal in three months", "in three months", "2023-08", "month"),
    ("Back in a few days", "in a few days", "2023-05-11", "day"),
    ("Retiring in four years", "in four years", "2027", "year"),
    ("Ping me a week from now", "a week from now", "2023-05-15", "week"),
    # named periods
    ("Busy last week", "last week", "2023-05-01", "week"),
    ("Sprint ends this week", "this week", "2023-05-08", "week"),
    ("Off next week.", "next week", "2023-05-15", "week"),
    ("Rent went up last month", "last month", "2023-04", "month"),
    ("Moving next month", "next month", "2023-06", "month"),
    ("I quit smoking last year", "last year", "2022", "year"),
    ("Maybe next year", "next year", "2024", "year"),
    # absolute dates
    ("Logged on 2023-05-07 at noon", "2023-05-07", "2023-05-07", "day"),
    ("Born May 7, 2023.", "May 7, 2023", "2023-05-07", "day"),
    ("Born 7 May 2023.", "7 May 2023", "2023-05-07", "day"),
    ("See you May 7th", "May 7th", "2023-05-07", "day"),
    ("Her birthday is the 7th of May", "7th of May", "2023-05-07", "day"),
    ("Flight on Sept 3rd, 2021 was late", "Sept 3rd, 2021", "2021-09-03", "day"),
    ("Closed Dec. 25", "Dec. 25", "2023-12-25", "day"),
    ("Starts June 1", "June 1", "2023-06-01", "day"),
    ("Invoice for Jan 2022", "Jan 2022", "2022-01", "month"),
    ("Hired in May 2023", "May 2023", "2023-05", "month"),
    ("We married in 2022", "in 2022", "2022", "year"),
    ("Built in 1999.", "in 1999", "1999", "year"),
]


@pytest.mark.parametrize(("sentence", "phrase", "iso", "granularity"), CASES)
def test_resolves_phrase(sentence: str, phrase: str, iso: str, granularity: str) -> None:
    [mention] = find_dates(sentence, REF)
    start = sentence.index(phrase)
    assert (mention.start, mention.end, mention.phrase) == (start, start + len(phrase), phrase)
    assert (mention.iso, mention.granularity) == (iso, granularity)


def test_mention_carries_the_resolved_day() -> None:
    assert find_dates("last Friday", REF) == [
        DateMention(
            start=0, end=11, phrase="last Friday", date=dt.date(2023, 5, 5), granularity="day"
        )
    ]


def test_several_mentions_come_back_in_order() -> None:
    text = "Yesterday I booked flights for next Friday and a hotel from May 20th to May 23rd."
    assert [(m.phrase, m.iso) for m in find_dates(text, REF)] == [
        ("Yesterday", "2023-05-07"),
        ("next Friday", "2023-05-12"),
        ("May 20th", "2023-05-20"),
        ("May 23rd", "2023-05-23"),
    ]


def test_case_and_spacing_are_flexible() -> None:
    text = "LAST\u00a0FRIDAY, or was it  two   WEEKS\nago?"
    assert [(m.phrase, m.iso) for m in find_dates(text, REF)] == [
        ("LAST\u00a0FRIDAY", "2023-05-05"),
        ("two   WEEKS\nago", "2023-04-24"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "May I ask you something?",
        "I may go, or I may not.",
        "Soldiers march on.",
        "We march to the sea in March.",
        "I work on Saturdays",  # habitual, not one day
        "Meet at the Mayfair hotel",
        "It was 2023-02-30 apparently",  # no such day
        "Leap day Feb 29 is not in 2023",  # skipped date; "in 2023" still counts below
        "Stardate in 2150",  # bare years only 1900-2099
        "build 12023-05-07x",
        "todays",  # not a word boundary
    ],
)
def test_ignores_things_that_are_not_dates(text: str) -> None:
    found = [m.phrase for m in find_dates(text, REF)]
    assert found == (["in 2023"] if "in 2023" in text else [])


def test_offsets_keep_the_exact_day_and_iso_truncates_it() -> None:
    thursday = dt.datetime(2023, 5, 11, 9, 0)
    [mention] = find_dates("two weeks ago", thursday)
    assert mention.date == dt.date(2023, 4, 27)
    assert mention.iso == "2023-04-24"  # Monday of that week


@pytest.mark.parametrize(
    ("phrase", "reference", "expected"),
    [
        ("a month ago", dt.datetime(2023, 3, 31), dt.date(2023, 2, 28)),
        ("a month ago", dt.datetime(2024, 3, 31), dt.date(2024, 2, 29)),
        ("in 1 month", dt.datetime(2023, 1, 31), dt.date(2023, 2, 28)),
        ("in a year", dt.datetime(2024, 2, 29), dt.date(2025, 2, 28)),
        ("next month", dt.datetime(2023, 12, 31), dt.date(2024, 1, 1)),
    ],
)
def test_month_arithmetic_clamps_the_day(
    phrase: str, reference: dt.datetime, expected: dt.date
) -> None:
    [mention] = find_dates(phrase, reference)
    assert mention.date == expected


def test_timezone_aware_reference_uses_its_own_calendar_day() -> None:
    late = dt.datetime(2023, 5, 8, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-7)))
    assert [m.iso for m in find_dates("tomorrow", late)] == ["2023-05-09"]


def test_out_of_range_results_are_skipped_not_raised() -> None:
    assert find_dates("9999 years ago and in 9999 years", REF) == []
    assert find_dates("tomorrow", dt.datetime(9999, 12, 31)) == []
    assert [m.iso for m in find_dates("yesterday", dt.datetime(9999, 12, 31))] == ["9999-12-30"]


def test_a_megabyte_of_noise_is_fine() -> None:
    chunk = "🙂 你好 May I \x00\x1b[0m 12345 march on ... "
    text = chunk * (1_000_000 // len(chunk)) + "see you tomorrow"
    assert [m.iso for m in find_dates(text, REF)] == ["2023-05-09"]


_FRAGMENTS = st.sampled_from(
    [
        "last",
        "next",
        "this",
        "on",
        "in",
        "the",
        "day",
        "before",
        "after",
        "a",
        "an",
        "couple",
        "of",
        "few",
        "ago",
        "from",
        "now",
        "week",
        "weekend",
        "month",
        "year",
        "days",
        "Friday",
        "monday",
        "May",
        "march",
        "Sept.",
        "7th",
        "31",
        "29",
        "2023",
        "1999",
        "-",
        "/",
        ",",
        ".",
        "2023-05-07",
        "yesterday",
        "today",
        "tomorrow",
        "twelve",
        "0",
        "99999",
        "\u00a0",
        "\n",
        "🙂",
        "日",
        "\x00",
        "\u017f",
        "\u212a",
        "\u0130",
    ]
)
_TEXTS = st.one_of(st.text(), st.lists(_FRAGMENTS, max_size=30).map(" ".join))


@settings(max_examples=300, deadline=None)
@given(text=_TEXTS, reference=st.datetimes())
def test_never_raises_and_spans_are_sane(text: str, reference: dt.datetime) -> None:
    mentions = find_dates(text, reference)
    previous_end = 0
    for mention in mentions:
        assert previous_end <= mention.start < mention.end <= len(text)
        assert text[mention.start : mention.end] == mention.phrase
        assert mention.granularity in {"day", "week", "month", "year"}
        if mention.granularity == "week":  # iso is the Monday starting that week
            assert dt.date.fromisoformat(mention.iso).weekday() == 0
        else:  # iso is the date truncated to its granularity
            assert mention.date.isoformat().startswith(mention.iso)
        previous_end = mention.end


def test_annotate_spells_out_relative_dates_and_leaves_absolute_ones() -> None:
    text = "I went yesterday, on 3 May 2023, and I'll go again next month. Last week too."
    assert annotate(text, REF) == (
        "I went yesterday (7 May 2023), on 3 May 2023, and I'll go again next month "
        "(June 2023). Last week (the week of 1 May 2023) too.")
    assert annotate("no dates here", REF) == "no dates here"


def test_weekday_abbreviations_need_last_this_or_next() -> None:
    assert find_dates("we sat on sat", REF) == []
    assert [m.phrase for m in find_dates("this Thu works", REF)] == ["this Thu"]
