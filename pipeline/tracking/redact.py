"""Keep secrets out of params, tags, config artifacts and console output."""
from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "***"
_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|passwd|credential)", re.IGNORECASE)
# user:password@ after a scheme; Hydra escapes colons in logged overrides (http\://user\:pw@).
_URI_PASSWORD = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*\\?://)(?P<user>[^:/@\s\\]+)(?P<sep>\\?:)(?P<pw>[^@/\s]+)@")


def is_secret_key(key: str) -> bool:
    """A config key whose value must never be logged (env-var *names* are fine: `*_env`;
    so are token counts such as an LLM agent's `max_tokens`: `*_tokens`)."""
    return bool(_SECRET_KEY.search(key)) and not key.endswith(("_env", "_tokens"))


def redact_text(text: str) -> str:
    """Hide passwords embedded in URIs (postgresql://user:pw@host -> user:***@host)."""
    return _URI_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}{m['sep']}{REDACTED}@", text)


def redact(obj: Any, key: str = "") -> Any:
    """A copy of a plain container tree with secret values replaced by '***'."""
    if isinstance(obj, dict):
        return {k: redact(v, str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact(v, key) for v in obj)
    if key and is_secret_key(key) and obj not in (None, ""):
        return REDACTED
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


class RedactFilter(logging.Filter):
    """A logging filter that hides URI passwords in every record (console and log files)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
