"""The ``memory-plugins`` command.

    memory-plugins demo                       watch a memory degrade and come back
    memory-plugins chat                       talk to a local model (llama.cpp)
    memory-plugins inspect --user U           a user's memories by tier and fidelity
    memory-plugins stats [--user U]           counts, tokens, bytes
    memory-plugins verify                     check every frame's CRC32 and hash chain
    memory-plugins export [-o FILE]           the log as JSONL
    memory-plugins import FILE                replay an export into a new store
    memory-plugins recall QUERY --user U      what build() would include, and why

Every command but ``demo`` works on ``--path`` (default ``./memory``, or
``$MEMORY_PLUGINS_PATH``). Errors are one line on stderr; the exit status is 2
for a wrong call, 1 for a failure of the environment (and for ``verify`` finding
damage), 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO, TextIO

from .. import __version__
from ..errors import (
    CorruptionError,
    MemoryPluginsError,
    NotFoundError,
    StorageError,
    UsageError,
)
from ..settings import MEMORY_TYPES
from . import show, transfer
from .store import open_store

__all__ = ["main"]

PATH_ENV = "MEMORY_PLUGINS_PATH"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memory-plugins",
        description="Memory for LLM apps with a constant-size prompt.",
        epilog="Documentation: docs/cli.md. Exit status: 0 ok, 1 failure, 2 wrong call.")
    parser.add_argument("--version", action="version", version=f"memory-plugins {__version__}")
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--path", default=os.environ.get(PATH_ENV, "./memory"),
                       help=f"the store's directory (default: ${PATH_ENV} or ./memory)")
    user = argparse.ArgumentParser(add_help=False)
    user.add_argument("--user", default="default", help="user id (default: 'default')")
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--model", type=Path, help="a GGUF file (default: $MEMORY_PLUGINS_MODEL,"
                       " else Gemma 3 270M from the 'llama' extra)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", parents=[model], help="watch a memory degrade and come back")
    p.add_argument("--path", help="store directory (default: a temporary one)")
    p.add_argument("--no-model", action="store_true", help="scripted replies, even with "
                   "llama.cpp installed")
    p.add_argument("--every-turn", action="store_true", help="the model replies to every "
                   "turn (default: the first and the question; the rest are scripted)")
    p.add_argument("--embedder", choices=["default", "hashing"],
                   help="recall embedder (default: MiniLM if installed, else hashing)")

    p = sub.add_parser("chat", parents=[store, user, model],
                       help="talk to a local model (llama.cpp) with this memory")
    p.add_argument("--session", help="session id for the turns of this chat")
    p.add_argument("--max-tokens", type=int, help="cap on each reply (default: the "
                   "response budget, 256)")
    p.add_argument("--system", help="system prompt (default: the library's)")

    p = sub.add_parser("inspect", parents=[store, user],
                       help="a user's working set by tier and fidelity")
    p.add_argument("--level", type=int, choices=range(4), help="only this level (0-3)")
    p.add_argument("--type", choices=MEMORY_TYPES, help="only this memory type")
    p.add_argument("--limit", type=int, help="at most this many (oldest first)")
    p.add_argument("--json", action="store_true", help="one JSON object per memory")

    p = sub.add_parser("stats", parents=[store], help="counts, tokens and bytes")
    p.add_argument("--user", help="one user (default: the whole store)")
    p.add_argument("--json", action="store_true", help="as one JSON object")

    sub.add_parser("verify", parents=[store],
                   help="check every frame's CRC32 and every user's hash chain")

    p = sub.add_parser("export", parents=[store], help="write the log as JSONL")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument("--user", help="only this user's turns (default: every turn)")

    p = sub.add_parser("import", parents=[store],
                       help="replay a JSONL export into a new, empty store")
    p.add_argument("file", help="the export ('-' for stdin)")

    p = sub.add_parser("recall", parents=[store, user],
                       help="what build() would include for QUERY, and why")
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=10, help="search hits listed (default 10)")
    p.add_argument("--deep", action="store_true", help="also search the whole raw log "
                   "(deep_recall, the slow path)")
    return parser


def _export(args: argparse.Namespace) -> int:
    with open_store(args.path) as engine:
        if args.output is None:
            for line in transfer.export_lines(engine, user_id=args.user):
                sys.stdout.buffer.write(line.encode("utf-8", "surrogatepass"))
            sys.stdout.flush()
            return 0
        target = Path(args.output)
        partial = target.with_name(target.name + ".partial")
        try:  # written aside, then renamed: an interrupted export leaves no half file
            with partial.open("wb") as fh:
                for line in transfer.export_lines(engine, user_id=args.user):
                    fh.write(line.encode("utf-8", "surrogatepass"))
            os.replace(partial, target)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise StorageError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return 0


def _import(args: argparse.Namespace) -> int:
    source: IO[bytes]
    if args.file == "-":
        source = tempfile.TemporaryFile()  # noqa: SIM115 (two passes need a seekable copy)
        shutil.copyfileobj(sys.stdin.buffer, source)
        source.seek(0)
    else:
        try:
            source = open(args.file, "rb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            raise NotFoundError(f"no file {args.file!r}") from None
        except OSError as exc:
            raise StorageError(f"cannot read {args.file!r}: {exc.strerror or exc}") from exc
    try:
        with source, open_store(args.path, create=True, writer=True,
                                durability="deferred") as engine:
            # deferred: one fsync at the end (flush) instead of one per turn
            count = transfer.import_lines(engine, source)
    except KeyboardInterrupt:
        print(f"memory-plugins: import interrupted: the store at {args.path} holds only part "
              "of the file; delete it and import again", file=sys.stderr)
        return 130
    print(f"imported {count} turns into {args.path}")
    return 0


def _run(args: argparse.Namespace, out: TextIO) -> int:
    cmd = args.command
    if cmd == "demo":
        from .demo import run_demo
        return run_demo(args.path, use_model=not args.no_model, model=args.model,
                        embedder=args.embedder, every_turn=args.every_turn, out=out)
    if cmd == "chat":
        from .chat import run_chat
        return run_chat(args.path, user_id=args.user, session_id=args.session,
                        model=args.model, max_tokens=args.max_tokens, system=args.system,
                        inp=sys.stdin, out=out)
    if cmd == "export":
        return _export(args)
    if cmd == "import":
        return _import(args)
    with open_store(args.path) as engine:
        if cmd == "inspect":
            return show.inspect(engine, out, user_id=args.user, level=args.level,
                                type=args.type, limit=args.limit, as_json=args.json)
        if cmd == "stats":
            return show.stats(engine, out, user_id=args.user, as_json=args.json)
        if cmd == "verify":
            return show.verify(engine, out)
        return show.recall(engine, out, query=args.query, user_id=args.user,
                           limit=args.limit, deep=args.deep)


def main(argv: list[str] | None = None) -> int:
    # The command's own output is the point; Hugging Face's "Loading weights" bars
    # (MiniLM, when the embeddings extra is installed) would only clutter it.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("stdin", "stdout", "stderr"):  # started with one closed (`<&-`, `>&-`)
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "r" if name == "stdin" else "w"))  # noqa: SIM115
    for stream in (sys.stdout, sys.stderr):  # the log keeps lone surrogates: print them
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = _parser().parse_args(argv)
    try:
        return _run(args, sys.stdout)
    except MemoryPluginsError as exc:
        message = " ".join(str(exc).split())  # one line, whatever the library said
        if isinstance(exc, CorruptionError):
            message += f" (run: memory-plugins verify --path {args.path})"
        print(f"memory-plugins: error: {message}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except BrokenPipeError:  # `memory-plugins export | head`: the reader left, fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("memory-plugins: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # writing our output failed (a full disk under `> file`)
        print(f"memory-plugins: error: {exc.strerror or exc}", file=sys.stderr)
        return 1
