"""Turn configuration mistakes into one clear line and a non-zero exit.

Hydra prints multi-line reports (and stack traces for errors raised while building);
users need the key, the value and what was expected. Set HYDRA_FULL_ERROR=1 to get
Hydra's full report instead.
"""
from __future__ import annotations

import dataclasses
import os
import re
import signal
import sys
from typing import Any, Callable

from pipeline.config import ConfigError

EXIT_USAGE = 2
EXIT_JOBS_FAILED = 1

# The signal that stopped this command (SIGINT for Ctrl-C, SIGTERM), or None: a sweep's
# parent run reads it at exit to end KILLED rather than FAILED.
stopped_by: int | None = None


class UsageError(Exception):
    """An input error found before the run started: printed as one line, exit code 2."""


def report_and_exit(ex: BaseException) -> None:
    """Exit with the one-line message if `ex` is a user error; otherwise return."""
    line = one_line_error(ex)
    if line is not None:
        sys.stderr.write(f"error: {line}\n")
        sys.exit(EXIT_USAGE)


def guarded(main: Callable[[], Any]) -> None:
    """Run `main` (a Hydra entry point); exit 2 on a user error, 1 after a sweep in which
    some jobs failed (each is a FAILED child run; the sweep itself went on), 128 + the
    signal number after Ctrl-C or SIGTERM. SIGTERM (a scheduler's or `kill`'s stop) is
    handled like Ctrl-C: the run in progress ends KILLED instead of staying RUNNING."""
    global stopped_by
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)
    try:
        if os.environ.get("HYDRA_FULL_ERROR"):
            main()
        else:
            os.environ["HYDRA_FULL_ERROR"] = "1"  # make Hydra raise so we can report in one line
            try:
                main()
            except Exception as ex:  # noqa: BLE001 - classified by report_and_exit
                report_and_exit(ex)
                raise
    except KeyboardInterrupt:
        stopped_by = stopped_by or signal.SIGINT
        sys.stderr.write(f"stopped by {signal.Signals(stopped_by).name}\n")
        sys.exit(128 + stopped_by)
    sweep = sys.modules.get("pipeline.tracking.sweep")   # non-zero only after a tracked sweep
    if sweep is not None and sweep.failed_jobs():
        sys.exit(EXIT_JOBS_FAILED)


def _terminated(signum: int, frame: Any) -> None:
    global stopped_by
    stopped_by = signum
    raise KeyboardInterrupt


def one_line_error(ex: BaseException) -> str | None:
    """The one-line message for a user error, None for anything else (a bug: show it all)."""
    from hydra.errors import ConfigCompositionException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    from pipeline.tracking.mlflow_tracker import TrackingError

    if isinstance(ex, (ConfigError, UsageError, TrackingError)):
        return str(ex)
    chain = _chain(ex)
    for err in chain:
        if isinstance(err, OmegaConfBaseException) and getattr(err, "full_key", None):
            return _omegaconf_line(err)
    for err in chain:
        if isinstance(err, (MissingConfigException, ConfigCompositionException)):
            return _hydra_line(str(err))
    return None


def _chain(ex: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    while ex is not None and ex not in out:
        out.append(ex)
        ex = ex.__cause__ or ex.__context__
    return out


def _omegaconf_line(err: Any) -> str:
    key = getattr(err, "full_key", None) or getattr(err, "key", None) or "config"
    msg = (getattr(err, "msg", None) or str(err)).splitlines()[0]
    obj_type = getattr(err, "object_type", None)
    if "not in" in msg or "is not in struct" in msg:
        allowed = ""
        if obj_type is not None and dataclasses.is_dataclass(obj_type):
            names = [f.name for f in dataclasses.fields(obj_type) if not f.name.startswith("_")]
            allowed = f" (expected one of: {', '.join(names)})"
        return f"{key}: unknown key{allowed}"
    msg = msg.replace("could not be converted to", "is not a valid")
    return f"{key}: {msg}"


def _hydra_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    missing = re.search(r"Could not find '([^']+)/([^'/]+)'", lines[0]) if lines else None
    if missing:
        group, option = missing.groups()
        options: list[str] = []
        listing = False
        for line in lines[1:]:
            if line.startswith("Available options"):
                listing = True
            elif line.startswith("Config search path"):
                break
            elif listing and not line.startswith("_"):
                options.append(line)
        return (f"{group}={option}: no such option in conf/{group}/ "
                f"(expected one of: {', '.join(options)})")
    return " ".join(lines)
