"""Deterministic extraction: a turn's text -> memory units and mention terms.

No LLM and no model: a handful of compiled patterns, fast enough for the write
path. What it finds per sentence:

* a subject (the speaker for "I"/"my", else the role: ``user``, ``assistant``),
* a relation and a value: "my dog's name is Potola" -> user|dog|Potola,
  "I went to a support group yesterday" -> user|went to|support group @2023-05-07
  (relative dates resolved against the turn's time and kept in the value),
* a type (episodic, semantic, preference, procedural, emotional, contextual),
* mention terms ("user|dog", "potola") by which a later turn reinforces it.

Questions and small talk ("Hey! Thanks!") yield no unit, but their terms still
count as mentions: "what's my dog's name?" reinforces user|dog|Potola.

Extraction of one sentence depends only on the sentence, the speaker, the role
and the turn's time, so a forgotten unit is rebuilt exactly from the raw log.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re

from .dates import find_dates

__all__ = ["Extracted", "TurnAnalysis", "analyze_turn", "extract_span", "fingerprint",
           "opens_reply", "questions", "split_sentences", "subject_for"]

_STOP = frozenset("""
a about above after again against all also am amazing an and any are as at awesome be
because been before being below between both but by bye can cant cool could did do does
doing done dont down during each even ever few for from further get glad gonna good got
great had haha has have having he hello her here hers herself hey hi him himself his how i
id if ill im in into is it its itself ive just let lol lot me might more most much
must my myself nice no nor not now of off oh ok okay on once only or other our ours
ourselves out over own pretty quite really same she should so some sounds such sure than
thank thanks that thats the their theirs them themselves then there these they this those
through to too totally under until up us very was we well were what whats when where which
while who whom why will with wont would wow yeah yes you your yours yourself yourselves
""".split())

_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+[\"')\]]*|(?=\n)|$)")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'’-]*|\d[\d.,:/-]*")
_POSSESSIVE_NAME = re.compile(
    r"\bmy (?P<rel>[a-z]+(?: [a-z]+)?)(?:'s|’s)? (?:name is|is (?:named|called)) (?P<val>[^,.;!?]+)"
    r"|\bI have an? (?P<rel2>[a-z]+(?: [a-z]+)?) (?:named|called) (?P<val2>[^,.;!?]+)",
    re.IGNORECASE)
_POSSESSIVE = re.compile(
    r"\bmy (?P<rel>(?:[a-z]+ ){0,2}?[a-z]+) (?:is|are|was|were|'s|’s) (?P<val>[^,.;!?]+)",
    re.IGNORECASE)
_I_AM = re.compile(r"\bI(?:'m|’m| am) (?:a |an |the )?(?P<val>[^,.;!?]+)", re.IGNORECASE)
_I_VERB = re.compile(
    r"\bI (?:(?:really|just|also|recently|finally|actually|never|always|will|would|"
    r"'ve|’ve|'ll|’ll|'d|’d|do|did|can|could) )*(?P<verb>[a-z]+)"
    r"(?P<prep> (?:to|on|in|at|for|with|about|into|from|up|out|over))? (?P<val>[^,.;!?]+)",
    re.IGNORECASE)
_MY_THING = re.compile(r"\bmy (?P<noun>[a-z]+)(?:'s|’s)?", re.IGNORECASE)
_MENTION_WORDS = 8  # content words per sentence looked up as mentions
_MAX_TERMS = 3  # mention keys indexed per unit: the restore index grows with the log
_HAVE = frozenset({"have", "had", "got", "get"})  # stopwords, yet real verbs after "I"
_FIRST_PERSON = re.compile(r"\b(?:I|my|me|mine)\b", re.IGNORECASE)
_QUESTION = re.compile(r"\?[\"')\]]*\s*$")

_TYPE_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("preference", re.compile(
        r"\b(?:i|we) (?:really |also |just )?(?:like|love|enjoy|prefer|hate|dislike|adore)\b"
        r"|\bfavou?rite\b|\bcan'?t stand\b", re.IGNORECASE)),
    ("procedural", re.compile(
        r"\bhow to\b|\bstep \d|\b(?:always|never) (?!been)\w+|\bmake sure\b|\bremember to\b"
        r"|\bdon'?t forget\b|\bfirst,? .* then\b", re.IGNORECASE)),
    ("semantic", re.compile(
        r"\bmy \w+(?:'s)? (?:name )?is\b|\bname is\b|\bI have an? \w+ (?:named|called)\b"
        r"|\bI(?:'m| am) an? \b|\bI (?:work|live|study)"
        r"\b|\bborn\b|\ballergic\b", re.IGNORECASE)),
    ("emotional", re.compile(
        r"\b(?:feel|felt|feeling|happy|sad|excited|angry|upset|anxious|stressed|thankful|"
        r"grateful|proud|scared|afraid|lonely|worried|nervous|overwhelmed|heartbroken)\b",
        re.IGNORECASE)),
    ("contextual", re.compile(
        r"\b(?:today|tonight|right now|currently|at the moment|this week|tomorrow|meeting|"
        r"appointment)\b", re.IGNORECASE)),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Extracted:
    index: int  # the unit's position among the turn's units (part of its id)
    start: int  # character span in the turn's text
    end: int
    text: str
    type: str
    subject: str
    relation: str
    value: str
    terms: tuple[str, ...]
    importance: float  # 1..2, from entities, numbers and dates: scales stability


@dataclasses.dataclass(frozen=True, slots=True)
class TurnAnalysis:
    units: tuple[Extracted, ...]
    mentions: tuple[str, ...]  # terms said anywhere in the turn, questions included


def subject_for(role: str, speaker: str | None) -> str:
    name = speaker if speaker else role
    return _clean(name.lower()) or "user"


def _clean(s: str) -> str:
    """Collapse whitespace and keep '|' out of forms (it separates their fields)."""
    return " ".join(s.replace("|", "/").split())


def fingerprint(text: str) -> bytes:
    """Normalised text hash: re-sent or repeated sentences map to one unit."""
    norm = " ".join(w.lower() for w in _WORD.findall(text))
    return hashlib.blake2b(norm.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def split_sentences(text: str, max_chars: int) -> list[tuple[int, int]]:
    """Sentence spans (stripped); sentences over ``max_chars`` are cut at spaces."""
    spans: list[tuple[int, int]] = []
    for m in _SENTENCE.finditer(text):
        start, end = _stripped(text, m.start(), m.end())
        while end - start > max_chars:
            cut = text.rfind(" ", start + 1, start + max_chars)
            cut = cut if cut > start else start + max_chars
            spans.append((start, cut))
            start = cut
            while start < end and text[start].isspace():
                start += 1
        if end > start:
            spans.append((start, end))
    return spans


def _stripped(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _content_words(s: str) -> list[str]:
    return [w for w in _WORD.findall(s) if w.lower().strip("'’") not in _STOP and len(w) > 1]


def _entities(sentence: str) -> list[str]:
    """Capitalised words that are not sentence-initial stopwords, and numbers."""
    found: list[str] = []
    for i, m in enumerate(_WORD.finditer(sentence)):
        w = m.group().strip("'’")
        named = w[:1].isupper() and w.lower() not in _STOP and (i > 0 or len(w) > 2)
        if (w[:1].isdigit() or named) and w.lower() != "i" and w not in found:
            found.append(w)
    return found


def _compact_value(raw: str, dates: list[str]) -> str:
    words = _content_words(raw)[:6]
    value = _clean(" ".join(w.strip("'’") for w in words))
    for d in dates:
        value = f"{value} @{d}".strip()
    return value


def _mentions(sentence: str, subject: str, entities: list[str]) -> list[str]:
    """What a sentence talks about, in the keys units are indexed under: "my dog"
    (user|dog), names (potola), and the speaker's content words (user|pottery). Words
    found in many memories are ignored at lookup (``common_term_limit``)."""
    terms = [f"{subject}|{m.group('noun').lower()}" for m in _MY_THING.finditer(sentence)
             if m.group("noun").lower() not in _STOP]
    terms += [e.lower() for e in entities if not e[:1].isdigit()]
    words = [w.lower().strip("'’") for w in _content_words(sentence) if not w[:1].isdigit()]
    terms += [f"{subject}|{w}" for w in words[:_MENTION_WORDS] if len(w) > 2]
    return terms


def _says_something(sentence: str) -> bool:
    """Questions and small talk ("Hey Mel!") are not memories; "I like tea." is."""
    content = len(_content_words(sentence))
    return not (_QUESTION.search(sentence) or content == 0
                or (content == 1 and not _FIRST_PERSON.search(sentence)))


def opens_reply(text: str, start: int) -> bool:
    """Does the sentence at ``start`` say the first thing ``text`` says (only
    questions and small talk before it: "Thanks, Mel! It taught me a lot.")?
    Reads only up to ``start``: asked for every unit of a turn, and a turn may
    be a megabyte."""
    for m in _SENTENCE.finditer(text):
        if m.start() >= start:
            break
        s, e = _stripped(text, m.start(), m.end())
        if s < start and e > s and _says_something(text[s:e]):
            return False
    return True


def questions(text: str) -> list[str]:
    """The questions ``text`` asks, in order."""
    return [text[s:e] for s, e in split_sentences(text, len(text) + 1)
            if _QUESTION.search(text[s:e])]


def _extract_sentence(text: str, start: int, end: int, index: int, subject: str,
                      when: dt.datetime, entities: list[str]) -> Extracted | None:
    sentence = text[start:end]
    if not _says_something(sentence):
        return None
    mentions = find_dates(sentence, when)
    dates = [d.iso for d in mentions]
    # Date phrases are replaced by their absolute form, not kept as words.
    undated = sentence
    for d in reversed(mentions):
        undated = undated[: d.start] + " " + undated[d.end :]
    relation: str | None = None
    value_raw = ""
    possessive = False
    m = _POSSESSIVE_NAME.search(undated)
    if m:
        relation = (m.group("rel") or m.group("rel2")).lower()
        value_raw = m.group("val") or m.group("val2")
        possessive = True
    elif (m := _POSSESSIVE.search(undated)) is not None:
        relation, value_raw, possessive = m.group("rel").lower(), m.group("val"), True
    elif (m := _I_AM.search(undated)) is not None:
        relation, value_raw = "is", m.group("val")
    elif (m := _I_VERB.search(undated)) is not None and (
            m.group("verb").lower() not in _STOP or m.group("verb").lower() in _HAVE):
        relation = m.group("verb").lower() + (m.group("prep") or "").lower()
        value_raw = m.group("val")
    value = _compact_value(value_raw, dates) if relation else ""
    if not relation or not value:
        words = _content_words(undated) or ["said"]  # e.g. only a date: "I did, yesterday."
        relation = words[0].lower().strip("'’")
        value = _compact_value(" ".join(words[1:]), dates)
    relation = _clean(relation)
    terms: list[str] = []
    if possessive:
        terms.append(f"{subject}|{relation}")
    terms += [f"{subject}|{w.lower()}" for w in _content_words(value_raw or "")[:3]
              if not w[:1].isdigit()]
    terms += [e.lower() for e in entities[:3] if not e[:1].isdigit()]
    terms = list(dict.fromkeys(terms))[:_MAX_TERMS]
    kind = next((name for name, rule in _TYPE_RULES if rule.search(sentence)), "episodic")
    importance = 1.0 + 0.25 * min(4, len(entities) + len(dates))
    return Extracted(index=index, start=start, end=end, text=sentence, type=kind,
                     subject=subject, relation=relation, value=value,
                     terms=tuple(terms), importance=importance)


def analyze_turn(text: str, *, role: str, speaker: str | None, when: dt.datetime,
                 max_units: int, max_chars: int) -> TurnAnalysis:
    subject = subject_for(role, speaker)
    units: list[Extracted] = []
    mentions: list[str] = []
    for start, end in split_sentences(text, max_chars):
        if len(units) >= max_units and len(mentions) >= 4 * max_units:
            break  # bounded work on huge turns: the log keeps the rest
        sentence = text[start:end]
        entities = _entities(sentence)
        mentions.extend(_mentions(sentence, subject, entities))
        if len(units) < max_units:
            unit = _extract_sentence(text, start, end, len(units), subject, when, entities)
            if unit is not None:
                units.append(unit)
    return TurnAnalysis(units=tuple(units), mentions=tuple(dict.fromkeys(mentions)))


def extract_span(text: str, start: int, end: int, *, index: int, role: str,
                 speaker: str | None, when: dt.datetime) -> Extracted | None:
    """Rebuild one unit from its span in a logged turn (restoration)."""
    return _extract_sentence(text, start, end, index, subject_for(role, speaker), when,
                             _entities(text[start:end]))
