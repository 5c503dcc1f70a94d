"""The text interface that lets LLM agents play an env.

An env that supports LLM agents implements these methods on its unwrapped class; the
agent receives the unwrapped env at build time. The text is produced on demand, never on
every step, so RL training does not pay for it.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable


class IllegalActionError(ValueError):
    """An action (index or text) that is not legal now; the message says why and what is."""


@runtime_checkable
class TextGame(Protocol):
    def text_view(self) -> str:
        """The current state as plain text (hand with indices, target, shop, RAM summary...)."""
        ...

    def describe_actions(self) -> str:
        """The documented answer format, e.g. 'play 1 3 5 | discard 2 4'."""
        ...

    def parse_action(self, text: str) -> int:
        """Map an answer to a legal action index; raise IllegalActionError with feedback."""
        ...

    def action_to_text(self, action: int) -> str:
        """The answer that `parse_action` maps back to `action` (for logs and fallbacks)."""
        ...
