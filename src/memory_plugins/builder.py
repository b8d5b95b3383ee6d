"""build(): one constant-size prompt from the store and the current input.

Order of work (each section inside its budget, see ``prompt.py``):

1. system text, cut to its budget;
2. current input, cut to its budget (reported in ``truncated``); if the host
   already observed it (LlamaIndex's SimpleChatEngine does), it is not repeated
   in the history: it appears once, in the current section;
3. memories: hybrid recall over the user's working set and recently forgotten
   units, scored by turn, then a knapsack over how to show each (its whole source
   turn, its sentence, or a compressed form and room for more); units whose turn
   is in the recent history are not repeated;
4. history: the most recent turns verbatim, newest first, then the source turns of
   the best memories, shown in time order.

Everything is counted with the engine's tokenizer, template overhead included, and
the total is checked against the budget before the prompt is returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import ValidationError
from .frames import Turn
from .prompt import (
    MEMORIES_HEADER,
    WHOLE_TURN,
    Prompt,
    Source,
    knapsack,
    level_value,
    render_text,
)
from .recall import Candidate, Entry, query_words
from .tokenizers import MAX_CHARS_PER_TOKEN, encodable
from .workingset import caller_metadata

if TYPE_CHECKING:
    from .engine import MemoryEngine

__all__ = ["build_prompt", "recall_candidates"]

DEFAULT_SYSTEM = ("You are a helpful assistant with a long-term memory. Use the memories "
                  "and the conversation below to answer.")
CANDIDATES = 192  # recall candidates the packer chooses from
COLD_SUBJECTS, COLD_PER_TERM, COLD_LIMIT = 4, 8, 64  # bounds of the cold recall per build
FORGOTTEN_SCAN = 2  # an index rebuild looks for forgotten units in this x limit turns
TURN_SHARE = 0.6  # of a turn's other candidates' scores each of its candidates gains
RECENT_SHARE = 0.1  # of the history budget kept for the latest turns; the rest: relevant ones
MEMORY_ROLE = "memory"


class Shown(NamedTuple):
    """A memory line the packer chose."""

    candidate: Candidate
    level: int  # WHOLE_TURN: its source turn, whole
    line: str
    tokens: int  # count(line) + 1
    joined: int  # count(line + "\n")


def build_prompt(engine: MemoryEngine, current: str, user_id: str,
                 system: str | None) -> Prompt:
    tok, budget = engine.tokenizer, engine.budget
    per_msg = tok.per_message
    count = _Counts(tok.count)  # the same long texts are weighed several times
    truncated: list[str] = []
    # The system message (it carries the memories) and the current input are always
    # sent, and no section may exceed its own budget: each must hold a message's
    # fixed cost. (Before this check, system=0 silently used 3 tokens.)
    if budget.system < per_msg or budget.current <= per_msg + tok.per_reply:
        raise ValidationError(
            f"this Budget is too small for its tokenizer: every message costs "
            f"{per_msg} tokens and the reply's priming {tok.per_reply}, so Budget.system "
            f"needs >= {per_msg} (got {budget.system}) and Budget.current > "
            f"{per_msg + tok.per_reply} (got {budget.current})")

    # 1. system
    system_text = DEFAULT_SYSTEM if system is None else system
    if count(system_text) + per_msg > budget.system:
        full = count(system_text)
        system_text = tok.truncate(system_text, max(0, budget.system - per_msg))
        truncated.append(f"system: {count(system_text)} of {full} tokens kept")
    system_tokens = count(system_text) + per_msg

    # 2. current
    room = budget.current - per_msg - tok.per_reply
    # Counted once (cached) when it may fit; a huge input is cut without counting it
    # whole first: 8 MB took tiktoken seconds.
    current_text = current
    if len(current) > room * MAX_CHARS_PER_TOKEN or count(current) > room:
        current_text = tok.truncate(current, room)
    if current_text != current:
        truncated.append(f"current: {count(current_text)} tokens kept of "
                         f"{len(current):,} characters")
    current_tokens = count(current_text) + per_msg + tok.per_reply

    # Recent turns: found first, so memories do not repeat what history will show.
    with engine._ws_read() as tx:  # the conversation's "today": its latest turn's day
        now = engine._ws.state(tx, user_id).now
    cost = _HistoryCost(engine, _day(now))
    recent, observed_current = _recent_turns(engine, user_id, current,
                                             int(budget.history * RECENT_SHARE), cost)
    recent_ids = {t.id for t in recent} | {observed_current}

    # 3. memories
    memory_budget = budget.memories + (budget.system - system_tokens)
    candidates = _by_turn(recall_candidates(engine, user_id, current))
    candidates = [c for c in candidates if c.unit.origin not in recent_ids]
    turns = _turns_of(engine, candidates)
    chosen, memory_tokens = _pack_memories(engine, count, candidates, turns, system_text,
                                           memory_budget)
    lines = [shown.line for shown in chosen]
    system_content = system_text + ("\n\n" + MEMORIES_HEADER + "\n" + "\n".join(lines)
                                    if lines else "")

    # 4. history
    history_budget = (budget.history + (memory_budget - memory_tokens)
                      + (budget.current - current_tokens))
    history, history_sources = _pack_history(user_id, recent, candidates, turns, chosen,
                                             history_budget, cost)

    messages = [{"role": m["role"], "content": encodable(m["content"])} for m in
                [{"role": "system", "content": system_content}, *history,
                 {"role": "user", "content": current_text}]]
    history_tokens = sum(source.tokens for source in history_sources)
    total = system_tokens + memory_tokens + history_tokens + current_tokens
    if total > budget.prompt:  # each section was packed inside its room: a bug if not
        raise ValidationError(
            f"prompt accounting failed ({total} tokens, budget {budget.prompt})")
    sources = [Source(c.unit.id, "memories", max(0, level), tokens - 1, c.score,
                      _metadata(c, turns), line) for c, level, line, tokens, _ in chosen]
    sources += history_sources
    prompt = Prompt(
        messages=messages, text=render_text(messages),
        tokens={"system": system_tokens, "memories": memory_tokens,
                "history": history_tokens, "current": current_tokens, "total": total},
        sources=sources, max_tokens=budget.response, truncated=truncated, budget=budget)
    engine.events.emit("memory_retrieve", {
        "user_id": user_id, "memory_ids": [shown.candidate.unit.id for shown in chosen],
        "levels": [max(0, shown.level) for shown in chosen], "tokens": prompt.tokens})
    return prompt


def recall_candidates(engine: MemoryEngine, user_id: str, query: str) -> list[Candidate]:
    """The best units for ``query``, best first: the working set and the recently
    forgotten (the RAM index), plus older forgotten units the query names (the
    mention index, rebuilt from the log)."""
    recall = engine._recall_engine()
    ws = engine._ws
    with engine._ws_read() as tx:
        state = ws.state(tx, user_id)

        def entries() -> list[Entry]:
            limit = engine.settings.recall_forgotten_units
            def turn_of(turn_id: int) -> Turn | None:
                return engine._turn(tx.log, turn_id)

            found = ([Entry(u, engine._cue_in(tx.log, u)) for u in ws.iter_units(tx, user_id)]
                     + [Entry(u, engine._cue_in(tx.log, u), forgotten=True) for u in
                        ws.recently_forgotten(tx, user_id, limit, FORGOTTEN_SCAN * limit)])
            # A new index: its lines too, once (later the worker keeps them ready).
            engine._lines.warm([e.unit for e in found], turn_of)
            return found

        index = recall.get(user_id, state.version, entries, tx.ws)
        words = query_words(query)
        with recall.lock:
            subjects = sorted(index.subjects)[:COLD_SUBJECTS]
        terms = [*words, *(f"{s}|{w}" for s in subjects for w in words)]
        # Units in the index are passed over: a dict lookup, safe while the worker
        # writes (a stale answer only means one more unit read and then dropped).
        cold = ws.forgotten_mentioning(tx, user_id, terms, COLD_PER_TERM, COLD_LIMIT,
                                       skip=index.pos)
        if cold:
            with recall.lock:
                cold = [u for u in cold if u.id not in index.pos]
        cold_cues = [engine._cue_in(tx.log, u) for u in cold]
    recall.save(user_id)  # the vectors a new index made, kept for the next process
    vector = recall.embedder.embed([query])[0] if query.strip() else None
    warm = recall.search(index, query, state.now, CANDIDATES, vector)
    if not cold:
        return warm
    outside = recall.score_outside(cold, cold_cues, query, state.now, vector, index)
    return sorted([*warm, *outside], key=lambda c: (-c.score, c.unit.id))[:CANDIDATES]


def _by_turn(candidates: list[Candidate]) -> list[Candidate]:
    """A turn that says several relevant things is worth more than each alone:
    each candidate gains a share (``TURN_SHARE``) of its turn's other candidates'
    scores (LoCoMo dev: evidence 0.874 -> 0.887, answers 0.882 -> 0.892)."""
    total: dict[int, float] = {}
    for c in candidates:
        total[c.unit.origin] = total.get(c.unit.origin, 0.0) + c.score
    out = [Candidate(c.unit, c.cue, c.forgotten,
                     c.score + TURN_SHARE * (total[c.unit.origin] - c.score),
                     c.vector, c.keyword, c.alive) for c in candidates]
    return sorted(out, key=lambda c: (-c.score, c.unit.id))


def _recent_turns(engine: MemoryEngine, user_id: str, current: str, budget: int,
                  cost_of: _HistoryCost) -> tuple[list[Turn], int]:
    """Newest turns first, until their text alone would fill the history budget; and
    the id of the current input if the host already observed it (else 0)."""
    out: list[Turn] = []
    used = 0
    observed_current = 0
    for turn in engine._turns_newest_first(user_id):
        if turn.role == MEMORY_ROLE:
            continue
        if not observed_current and not out and turn.role == "user" and turn.text == current:
            observed_current = turn.id  # observed before build(): shown once, as current
            continue
        cost = cost_of(turn)
        if used + cost > budget:
            break
        out.append(turn)
        used += cost
    return out, observed_current


def _day(ts: float, utc_offset_minutes: int = 0) -> int | None:
    """The calendar day of ``ts`` in the given UTC offset, as a day number (cheaper
    than a datetime; called for every turn a build weighs)."""
    day = (ts + utc_offset_minutes * 60) // 86400
    return int(day) if math.isfinite(day) else None  # no turn yet: -inf


class _HistoryCost:
    """A turn as a history message, and its tokens, made once per build (a turn is
    weighed when picked as recent, again when packed, again for its source).

    A turn from another day than the conversation's latest is dated, and its
    relative dates resolved ("[7 May 2023] Caroline: ... yesterday (6 May 2023)"):
    an older exchange pulled in for relevance means little without its date.
    """

    def __init__(self, engine: MemoryEngine, today: int | None) -> None:
        self.today = today
        self.known: dict[int, tuple[str, int]] = {}
        self.lines = engine._lines

    def message(self, turn: Turn) -> tuple[str, int]:
        """The turn's history message and its tokens."""
        made = self.known.get(turn.id)
        if made is None:
            made = self.lines.history(
                turn, _day(turn.timestamp, turn.utc_offset_minutes) != self.today)
            self.known[turn.id] = made
        return made

    def __call__(self, turn: Turn) -> int:
        return self.message(turn)[1]


def _pack_memories(engine: MemoryEngine, count: Callable[[str], int],
                   candidates: list[Candidate], turns: dict[int, Turn], system_text: str,
                   budget: int) -> tuple[list[Shown], int]:
    """The memory lines to show, in time order (which candidate, at which level,
    the line and its tokens), and the tokens they and their header add to the
    system message, counted exactly."""
    header = count(system_text + "\n\n" + MEMORIES_HEADER + "\n") - count(system_text)
    if not candidates or budget <= header:
        return [], 0
    made = [engine._lines.memory(c.unit, turns.get(c.unit.origin)) for c in candidates]
    picks = knapsack([(c.score, steps) for c, (_lines, steps) in zip(candidates, made,
                                                                        strict=True)],
                     budget - header)
    # A turn shown whole makes its other units' lines redundant.
    whole = {candidates[i].unit.origin: i for i, level in sorted(picks.items(), reverse=True)
             if level == WHOLE_TURN}
    chosen = sorted((Shown(candidates[i], *line)
                     for i, level in picks.items()
                     if whole.get(candidates[i].unit.origin, i) == i
                     for line in made[i][0] if line.level == level),
                    key=lambda x: (x.candidate.unit.created_at, x.candidate.unit.id))
    # Exact count of the block as it will be sent; drop the weakest until it fits.
    # A tokenizer whose lines add up (tokenizers.py) is not run over the block again:
    # each line with its newline, the last without, after a header ending in one.
    # (Memory lines are never blank: each starts with "- [".)
    add_up = getattr(engine.tokenizer, "lines_add_up", False)
    while chosen:
        if add_up:
            used = header + sum(shown.joined for shown in chosen) - chosen[-1].joined \
                + chosen[-1].tokens - 1
        else:
            block = "\n".join(shown.line for shown in chosen)
            used = (count(system_text + "\n\n" + MEMORIES_HEADER + "\n" + block)
                    - count(system_text))
        if used <= budget:
            return chosen, used
        weakest = min(range(len(chosen)), key=lambda k: (
            chosen[k].candidate.score * level_value(chosen[k].level), k))
        chosen.pop(weakest)
    return [], 0


class _Counts:
    """A tokenizer's counts, remembered for one build."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self._count = count
        self._known: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        n = self._known.get(text)
        if n is None:
            n = self._known[text] = self._count(text)
        return n


def _turns_of(engine: MemoryEngine, candidates: list[Candidate]) -> dict[int, Turn]:
    """The source turns of ``candidates``, by id: from the turn cache, and the log
    only for those it misses (most builds open no log read here)."""
    turns: dict[int, Turn] = {}
    missing: list[int] = []
    for c in candidates:
        origin = c.unit.origin
        if origin not in turns:
            turn = engine._turns.get(origin)
            if turn is None:
                missing.append(origin)
            else:
                turns[origin] = turn
    if missing:
        with engine._store.log_read() as txn:
            for origin in missing:
                turn = engine._turn(txn, origin)
                if turn is not None:
                    turns[origin] = turn
    return turns


def _pack_history(user_id: str, recent: list[Turn], candidates: list[Candidate],
                  turns: dict[int, Turn], chosen: list[Shown],
                  budget: int, cost_of: _HistoryCost
                  ) -> tuple[list[dict[str, str]], list[Source]]:
    """The recent turns, then the turns behind the best candidates that the
    memories section did not already show."""
    picked: list[Turn] = []
    used = 0
    for turn in recent:  # newest first
        cost = cost_of(turn)
        if used + cost > budget:
            break
        picked.append(turn)
        used += cost
    seen = {t.id for t in picked} | {shown.candidate.unit.origin for shown in chosen}
    scores: dict[int, float] = {}
    for c in candidates:
        if c.unit.origin in seen:
            continue
        source = turns.get(c.unit.origin)
        if source is None or source.user_id != user_id or source.role == MEMORY_ROLE:
            continue
        cost = cost_of(source)
        if used + cost > budget:
            continue
        picked.append(source)
        seen.add(source.id)
        scores[source.id] = c.score
        used += cost
    picked.sort(key=lambda t: t.id)
    messages, sources = [], []
    for t in picked:
        content, tokens = cost_of.message(t)
        messages.append({"role": "assistant" if t.role == "assistant" else "user",
                         "content": content})
        sources.append(Source(t.id, "history", 0, tokens, scores.get(t.id, 0.0),
                              _copy(t.metadata), content))
    return messages, sources


def _metadata(c: Candidate, turns: dict[int, Turn]) -> dict[str, Any] | None:
    return _copy(caller_metadata(c.unit, turns.get(c.unit.origin)))


def _copy(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """The caller's own copy: turns are cached and shared across builds."""
    return None if metadata is None else dict(metadata)

