"""The lines a prompt is made of, with their token counts, cached across builds.

Counting tokens is most of what packing a prompt costs, and the same memories
and turns come back build after build: each line is made and counted once, and
the background worker makes the lines of new and changed memories before any
build asks for them (as it embeds them), so build() mostly finds them ready.
A turn never changes in the log, and a memory's lines are keyed by everything
they are made from, so nothing here is ever stale.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any, NamedTuple

from .cache import LRU
from .dates import annotate
from .frames import Turn
from .prompt import (
    WHOLE_TURN,
    WHOLE_TURN_MAX_TOKENS,
    Hull,
    defuse,
    hull,
    human_date,
    level_value,
    memory_line,
    turn_line,
)
from .tokenizers import TiktokenTokenizer, Tokenizer
from .units import MemoryUnit

__all__ = ["Line", "PromptLines", "line_of"]

MEMORY_ROLE = "memory"


class Line(NamedTuple):
    """One way to show a memory in the prompt."""

    level: int  # fidelity level, or WHOLE_TURN
    text: str  # one line (sanitized: no line breaks)
    tokens: int  # count(text) + 1: what packing reckons it costs, newline included
    # count(text + "\n"), where the tokenizer's lines add up (a newline may merge with
    # a final "."); elsewhere unused, and equal to ``tokens``.
    joined: int


Lines = tuple[Line, ...]
# A memory's lines and the knapsack's hull over them (value per unit of score).
MemoryLines = tuple[Lines, Hull]


class PromptLines:
    def __init__(self, tokenizer: Callable[[], Tokenizer], size: int = 8192) -> None:
        self._tokenizer = tokenizer
        self._memories: LRU[tuple[Any, ...], MemoryLines] = LRU(size)
        self._turns: LRU[int, Line] = LRU(size)  # a turn as a memory line
        self._history: LRU[tuple[int, bool], tuple[str, int]] = LRU(size)

    def history(self, turn: Turn, dated: bool) -> tuple[str, int]:
        """A turn as a history message and its tokens (template overhead included).
        ``dated``: prefixed with its day and its relative dates resolved (for a
        turn from another day than the conversation's latest)."""
        key = (turn.id, dated)
        made = self._history.get(key)
        if made is None:
            tok = self._tokenizer()
            who = f"{defuse(turn.speaker)}: " if turn.speaker else ""
            said = defuse(turn.text)  # verbatim, but one message whatever it holds
            text = (f"[{human_date(turn.timestamp)}] {who}{annotate(said, turn.datetime)}"
                    if dated else who + said)
            made = (text, tok.count(text) + tok.per_message)
            self._history.put(key, made)
        return made

    def memory(self, unit: MemoryUnit, turn: Turn | None) -> MemoryLines:
        """Each way ``unit`` can be shown: verbatim (retrieval restores, so a degraded
        unit may be shown whole, read from the log), its own level and coarser, and
        its whole source turn when that is more than the sentence; with the hull
        the knapsack chooses from."""
        key = (unit.id, unit.level, unit.origin, unit.span, unit.value, unit.created_at)
        made = self._memories.get(key)
        if made is None:
            tok = self._tokenizer()
            speaker = turn.speaker if turn is not None else None
            verbatim = turn.text[unit.span[0] : unit.span[1]] if turn is not None else None
            said_at = turn.datetime if turn is not None else None
            out = []
            for level in (0, *range(max(1, unit.level), 4)):
                text = memory_line(unit, level, verbatim, speaker, said_at)
                if text is not None:
                    out.append(line_of(tok, level, text))
            if turn is not None and turn.role != MEMORY_ROLE and (
                    unit.span != (0, len(turn.text))):
                whole = self._whole_turn(turn)
                if whole.tokens <= WHOLE_TURN_MAX_TOKENS:
                    out.append(whole)
            made = (tuple(out), hull([(line.level, line.tokens, level_value(line.level))
                                      for line in out]))
            self._memories.put(key, made)
        return made

    def _whole_turn(self, turn: Turn) -> Line:
        made = self._turns.get(turn.id)
        if made is None:
            made = line_of(self._tokenizer(), WHOLE_TURN,
                         turn_line(turn.text, turn.speaker, turn.datetime))
            self._turns.put(turn.id, made)
        return made

    def warm(self, units: list[MemoryUnit], turn_of: Callable[[int], Turn | None]) -> None:
        """Make the lines of ``units`` (new or changed) before a build needs them."""
        for unit in units:
            turn = turn_of(unit.origin)
            self.memory(unit, turn)
            if turn is not None and turn.role != MEMORY_ROLE:
                self.history(turn, True)


def line_of(tok: Tokenizer, level: int, text: str) -> Line:
    """``text`` as a Line, counted by ``tok``."""
    tokens = tok.count(text) + 1
    if not getattr(tok, "lines_add_up", False):
        return Line(level, text, tokens, tokens)  # ``joined`` unused: blocks are counted whole
    # tiktoken's line-splitting patterns (tokenizers.py) make a newline after a letter
    # or a digit a token of its own, so only lines ending otherwise are encoded again.
    if isinstance(tok, TiktokenTokenizer) and unicodedata.category(text[-1:] or "a")[0] in "LN":
        return Line(level, text, tokens, tokens)
    return Line(level, text, tokens, tok.count(text + "\n"))
