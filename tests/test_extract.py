"""Deterministic extraction: subject|relation|value, types, dates, mentions."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_plugins.extract import analyze_turn, split_sentences

MONDAY = dt.datetime(2023, 5, 8, 13, 56, tzinfo=dt.UTC)


def units(text: str, speaker: str | None = None) -> list[tuple[str, str]]:
    found = analyze_turn(text, role="user", speaker=speaker, when=MONDAY, max_units=32,
                         max_chars=400).units
    return [(u.type, f"{u.subject}|{u.relation}|{u.value}") for u in found]


@pytest.mark.parametrize(("text", "expected"), [
    ("My dog's name is Potola.", ("semantic", "user|dog|Potola")),
    ("my dog is called Potola", ("semantic", "user|dog|Potola")),
    ("I have a cat named Miso.", ("semantic", "user|cat|Miso")),
    ("My favorite color is teal.", ("preference", "user|favorite color|teal")),
    ("I'm a nurse at the city hospital.", ("semantic", "user|is|nurse city hospital")),
    ("I love hiking in the Alps.", ("preference", "user|love|hiking Alps")),
    ("I went to a LGBTQ support group yesterday.",
     ("episodic", "user|went to|LGBTQ support group @2023-05-07")),
    ("I felt so proud of my daughter last Friday.",
     ("emotional", "user|felt|proud daughter @2023-05-05")),
    ("I have a dentist appointment tomorrow.", ("contextual", "user|have|dentist appointment "
                                                             "@2023-05-09")),
    ("I did it yesterday.", ("episodic", "user|said|@2023-05-07")),
    ("Always water the basil before noon.", ("procedural", "user|always|water basil noon")),
])
def test_one_fact_per_sentence(text: str, expected: tuple[str, str]) -> None:
    assert units(text) == [expected]


def test_the_speaker_is_the_subject() -> None:
    assert units("I painted a lake sunrise last year.", speaker="Melanie") == [
        ("episodic", "melanie|painted|lake sunrise @2022")]


def test_small_talk_and_questions_are_not_memories_but_still_mentions() -> None:
    analysis = analyze_turn("Hey Mel! Thanks! What's my dog's name?", role="user",
                            speaker=None, when=MONDAY, max_units=32, max_chars=400)
    assert analysis.units == ()
    assert "user|dog" in analysis.mentions and "mel" in analysis.mentions


def test_spans_point_into_the_text_and_long_sentences_are_cut() -> None:
    text = "First point here. " + "word " * 300 + "end."
    spans = split_sentences(text, max_chars=400)
    assert all(end - start <= 400 for start, end in spans)
    assert text[spans[0][0]:spans[0][1]] == "First point here."
    analysis = analyze_turn(text, role="user", speaker=None, when=MONDAY, max_units=2,
                            max_chars=400)
    assert len(analysis.units) == 2  # capped per turn; the log keeps the rest


@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=2000))
def test_extraction_never_fails_and_spans_match(text: str) -> None:
    analysis = analyze_turn(text, role="assistant", speaker=None, when=MONDAY, max_units=32,
                            max_chars=400)
    for unit in analysis.units:
        assert text[unit.start:unit.end] == unit.text
        assert "|" not in unit.relation and "|" not in unit.value
