"""Prompt text and answer extraction shared by the LLM agents (no LLM library imported here).

The answer format is the env's own (`describe_actions()`: `play 1 3 5`, `discard 2`,
`press up`, ...). The OpenAI agent asks for free reasoning followed by one line
`Action: <command>`; the DSPy agent gets the same format as a typed output field.
"""
from __future__ import annotations

import re

DEFAULT_SYSTEM_PROMPT = (
    "You are an expert game player controlling a game through text commands. Each turn you "
    "see the current state of the game and choose exactly one legal command. Play to win: "
    "make progress, avoid wasting resources, and never repeat a command that was refused."
)

# Named system prompts: `agent.prompt_variant=<name>` replaces agent.system_prompt with one,
# so a search (conf/hparams_search/llm_optuna_cost.yaml) can choose among them by name.
SYSTEM_PROMPTS = {
    "default": DEFAULT_SYSTEM_PROMPT,
    # Completion tokens are the dearer ones: ask for less reasoning per turn.
    "concise": DEFAULT_SYSTEM_PROMPT + " Keep your reasoning to one short sentence.",
    # Spend-aware play: think about the resources a command uses before choosing it.
    "planner": DEFAULT_SYSTEM_PROMPT + (
        " Before each command, weigh what it uses up (hands, discards, money, moves) against "
        "what it gains over the next few turns, and keep a plan across turns."),
}

# The OpenAI agent's reply format; the DSPy agent's signature carries the same rule.
ACTION_LINE_RULE = ("Think step by step in at most a few sentences, then end your reply with one "
                    "line of the form `Action: <command>` holding exactly one command.")

FEEDBACK = ("Your answer {answer!r} was refused: {error}\n"
            "Answer again with exactly one legal command.")

_ACTION_LINE = re.compile(r"^\W*action\W*[:=]\s*(?P<answer>.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_THINK = re.compile(r"<think>(?P<think>.*?)(?:</think>|$)", re.IGNORECASE | re.DOTALL)
_WRAPPING = " \t`'\"*_.[]<>"


def system_message(system_prompt: str, answer_format: str) -> str:
    """The OpenAI agent's system message: the role, the env's answer format, the reply rule."""
    return f"{system_prompt.strip()}\n\n{answer_format.strip()}\n\n{ACTION_LINE_RULE}"


def split_reply(text: str) -> tuple[str, str]:
    """(reasoning, answer) from a reply: the answer is the last `Action: ...` line, or else
    the last non-empty line; `<think>...</think>` blocks (reasoning models) count as reasoning."""
    text = text or ""
    thoughts = [m.group("think").strip() for m in _THINK.finditer(text)]
    visible = _THINK.sub("", text).strip()
    matches = list(_ACTION_LINE.finditer(visible))
    if matches:
        last = matches[-1]
        answer = last.group("answer")
        reasoning = (visible[:last.start()] + visible[last.end():]).strip()
    else:
        lines = [line for line in visible.splitlines() if line.strip()]
        answer = lines[-1] if lines else ""
        reasoning = "\n".join(lines[:-1])
    if thoughts:
        reasoning = "\n".join([*thoughts, reasoning]).strip()
    return reasoning, clean_answer(answer)


def clean_answer(answer: str) -> str:
    """Strip markdown and quotes around a command: '**`play 1 2`**.' -> 'play 1 2'."""
    return (answer or "").strip().strip(_WRAPPING).strip()


def history_text(turns: list[tuple[str, str]]) -> str:
    """The last turns as text (DSPy's history field): oldest first."""
    if not turns:
        return "(this is the first turn of the episode)"
    blocks = [f"Turn -{len(turns) - i}:\n{state}\nYou answered: {answer}"
              for i, (state, answer) in enumerate(turns)]
    return "\n\n".join(blocks)
