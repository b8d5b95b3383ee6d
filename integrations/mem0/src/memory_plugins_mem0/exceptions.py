"""Errors raised the way Mem0 raises them, and still ours.

Mem0 raises ``mem0.exceptions.ValidationError`` when no entity id is given (and for
bad ``messages`` or ``memory_type``), and a plain ``ValueError`` for most other bad
input, including an id that names nothing. Every error here is a
``memory_plugins.MemoryPluginsError`` *and* a ``ValueError``, so code that catches
``ValueError`` (what mem0 documents) or ours keeps working. Our ``ValidationError``
carries mem0's fields (``message``, ``error_code``, ``details``, ``suggestion``,
``debug_info``); it cannot be an instance of mem0's own class without importing mem0,
which this package never does.
"""

from __future__ import annotations

from typing import Any

from memory_plugins import NotFoundError
from memory_plugins import ValidationError as CoreValidationError

__all__ = ["MemoryNotFoundError", "ValidationError"]


class ValidationError(CoreValidationError):
    """Bad input (mem0's ``ValidationError`` fields; a ``ValueError`` too)."""

    def __init__(self, message: str, error_code: str = "VALIDATION_000",
                 details: dict[str, Any] | None = None, suggestion: str | None = None,
                 debug_info: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.details = details or {}
        self.suggestion = suggestion
        self.debug_info = debug_info or {}


class MemoryNotFoundError(NotFoundError, ValueError):
    """A memory id that names no memory here (mem0 raises ``ValueError``)."""
