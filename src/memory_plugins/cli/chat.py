"""``memory-plugins chat``: talk to a local model whose memory is the store.

Stateless: every turn, the prompt is rebuilt from the store by build() (constant
size, counted with the model's own tokenizer), the model answers, and both turns
are observed. Quit with an empty line, ``/quit`` or Ctrl-D; ``/prompt`` shows the
last prompt's sections and sources.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from ..errors import ValidationError
from ..prompt import Prompt
from . import llama
from .store import open_store

__all__ = ["run_chat"]


def describe(prompt: Prompt) -> str:
    """Token use per section and what the prompt holds, for ``/prompt`` and ``recall``."""
    t, b = prompt.tokens, prompt.budget
    lines = [f"tokens: system {t['system']}/{b.system}, memories {t['memories']}/{b.memories}, "
             f"history {t['history']}/{b.history}, current {t['current']}/{b.current}; "
             f"total {t['total']}/{b.prompt} (+{b.response} for the reply)"]
    lines += [f"truncated: {note}" for note in prompt.truncated]
    return "\n".join(lines)


def _read(inp: TextIO, out: TextIO) -> str | None:
    """One line from the user; None at end of input. A terminal gets input()'s line
    editing and history."""
    if inp is sys.stdin and inp.isatty() and out is sys.stdout:
        try:
            return input("you> ")
        except EOFError:
            return None
    out.write("you> ")
    out.flush()
    line = inp.readline()
    return line.rstrip("\n") if line else None


def run_chat(path: str, *, user_id: str, session_id: str | None, model: Path | None,
             max_tokens: int | None, system: str | None, inp: TextIO, out: TextIO) -> int:
    if max_tokens is not None and max_tokens < 1:
        raise ValidationError(f"--max-tokens must be at least 1, got {max_tokens}")
    llm = llama.load_model(model)  # before the store: a missing model changes nothing
    with open_store(path, create=True, writer=True,
                    tokenizer=llama.tokenizer_for(llm)) as engine:
        out.write(f"memory-plugins chat: store {engine.path}, user {user_id!r}, model "
                  f"{Path(llm.model_path).name}. Empty line or /quit to leave, /prompt to "
                  "see the last prompt.\n")
        engine.build("", user_id=user_id)  # loads the tokenizer and embedder before the first turn
        last: Prompt | None = None
        while True:
            text = _read(inp, out)
            if text is None or not text.strip() or text.strip() == "/quit":
                break
            if text.strip() == "/prompt":
                out.write((describe(last) if last else "no prompt yet") + "\n")
                continue
            engine.observe(text, user_id=user_id, session_id=session_id)
            t0 = time.perf_counter()
            last = engine.build(text, user_id=user_id, session_id=session_id, system=system)
            built = time.perf_counter() - t0
            answer = llama.reply(llm, last, max_tokens=max_tokens)
            engine.observe(answer or "(no reply)", role="assistant", user_id=user_id,
                           session_id=session_id)
            out.write(f"model> {answer}\n       [{last.tokens['total']} prompt tokens, "
                      f"built in {built * 1000:.0f} ms]\n")
    return 0
