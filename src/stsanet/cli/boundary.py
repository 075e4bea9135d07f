"""The one error boundary of every command.

Each entry point runs its body through :func:`call` (argparse commands: the :func:`command`
decorator; Hydra apps: :func:`hydra_command`), which turns what escapes into an exit status:

* bad input (:class:`stsanet.errors.InputError`, and the library errors that mean the same:
  a missing or unreadable path, no permission, a full disk, a config that does not compose or
  resolve, an object the config cannot build) -> one line on stderr naming the input and the
  fix, exit code 2;
* Ctrl-C / SIGTERM -> one line, exit code 130 / 143; both arrive as an exception, so every
  atomic write on the way out removes its temporary file and nothing is left half-written;
* anything else is a bug: its traceback is printed with a line asking for a report, exit code
  70 (EX_SOFTWARE).

Hydra catches exceptions around the task function and prints them its own way, so a Hydra app
gets the boundary twice: inside the task function (every error of the command itself, before
Hydra sees it) and around ``hydra.main`` (composition errors: an unknown group option, a key
that does not exist, an override that does not parse), where Hydra is asked to re-raise
(``HYDRA_FULL_ERROR=1`` for the duration of the call) instead of printing.

A new command is one function and a decorator::

    @command("stsanet-compare")
    def main(argv: list[str] | None = None) -> int: ...

    @hydra_command("stsanet-compare", config_name="compare")
    def main(cfg: DictConfig) -> int: ...
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from hydra.errors import HydraException, InstantiationException
from omegaconf.errors import OmegaConfBaseException

from stsanet.errors import InputError

EXIT_INPUT = 2
EXIT_BUG = 70  # sysexits.h EX_SOFTWARE: an internal error
CONTINUE = "run the same command again to continue"

# What to do about an OSError, by errno; the path comes from the error.
_OS_FIXES = {
    errno.ENOENT: "no such file or folder; check the path",
    errno.EACCES: "permission denied; choose a place you can read or write, or fix its permissions",
    errno.EPERM: "operation not permitted; choose another place or fix its permissions",
    errno.EROFS: "read-only file system; choose an output place on a writable disk",
    errno.EISDIR: "is a folder where a file is expected; give a file path",
    errno.ENOTDIR: "a file stands where a folder is expected (the path or one of its parents); "
                   "give a folder path",
    errno.EEXIST: "already exists; remove it or choose another path",
    errno.ENOTEMPTY: "folder is not empty; remove it or choose another path",
    errno.ENOSPC: "no space left on the device; free some or choose another output place",
    errno.EDQUOT: "disk quota exceeded; free some space or choose another output place",
    errno.ENAMETOOLONG: "file name too long; choose a shorter path",
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM, raised where the program was so that cleanups run on the way out.

    A KeyboardInterrupt, so libraries shut down as they do for Ctrl-C (Lightning then exits
    with status 1; the boundary knows a signal arrived and reports it as such)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class UsageError(InputError):
    """A command-line argument argparse refused."""


class CommandParser(argparse.ArgumentParser):
    """argparse, with its errors as one line through the boundary instead of usage + exit."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        raise UsageError(f"{message} (see {self.prog} --help)")


# ---------------------------------------------------------------------------------------------
# the one line
# ---------------------------------------------------------------------------------------------

def one_line(text: str) -> str:
    """A message as one line: lines joined by '; ', a list of options joined by ', ', Hydra's
    advice about HYDRA_FULL_ERROR and its config search path dropped."""
    parts: list[str] = []
    listing = False
    text = text.replace("In '_dummy_empty_config_': ", "")  # composed without a primary config
    for raw in _ANSI.sub("", text).splitlines():
        line = raw.strip()
        if not line or "HYDRA_FULL_ERROR" in line:
            continue
        if line.startswith("Config search path"):
            break
        if raw[:1] == "\t" and listing:
            parts[-1] += (" " if parts[-1].endswith(":") else ", ") + line
            continue
        listing = line.endswith(":")
        parts.append(line)
    return "; ".join([p.rstrip(".") for p in parts[:-1]] + parts[-1:]) or text.strip()


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it was raised from (``raise ... from``; not what it happened while
    handling, which may be unrelated)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__


def _message(error: InputError) -> str:
    text = str(error)
    # re-raised from a DataLoader worker: "Caught X in DataLoader worker process 0. Original
    # Traceback ...", whose last line is the worker's "module.X: message"
    if "Original Traceback" in text:
        return one_line(text.strip().splitlines()[-1].split(": ", 1)[-1]) + \
            " (in a data loading worker)"
    return one_line(text)


def describe(error: BaseException) -> str | None:
    """One line for an error that means bad input; None for a bug."""
    for cause in _causes(error):
        if isinstance(cause, InputError):
            return _message(cause)
    if isinstance(error, InstantiationException):
        cause = error.__cause__
        # a config key the target does not take, or one it needs that is not given
        if isinstance(cause, TypeError) and re.search(r"unexpected keyword|missing \d+ required",
                                                      str(cause)):
            return one_line(str(error))
        return None
    if isinstance(error, HydraException):
        override = getattr(error, "override", None)  # OverrideParseException names it apart
        return one_line(f"override {override!r} does not parse: {error}" if override else str(error))
    if isinstance(error, OmegaConfBaseException):
        key = getattr(error, "full_key", None)
        message = one_line(str(getattr(error, "msg", None) or error).split("\n    full_key:")[0])
        return f"{key}: {message}" if key and not message.startswith(f"{key}") else message
    if isinstance(error, OSError) and error.errno in _OS_FIXES:
        where = error.filename if error.filename is not None else ""
        if error.filename2 is not None:
            where = f"{where} -> {error.filename2}"
        return f"{where}: {_OS_FIXES[error.errno]}" if where else \
            f"{error.strerror}: {_OS_FIXES[error.errno]}"
    if type(error).__name__ == "MisconfigurationException":  # Lightning's bad-settings error
        return one_line(f"trainer settings: {error}")
    if type(error).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"out of accelerator memory ({first[:160]}); use a smaller batch or input size"
    return None


# ---------------------------------------------------------------------------------------------
# signals
# ---------------------------------------------------------------------------------------------

_state: dict[str, Any] = {"depth": 0, "signal": None, "reported": False}


def _raise_interrupted(signum: int, frame) -> None:
    _state["signal"] = signum
    raise Interrupted(signum)


@contextlib.contextmanager
def _signals_as_exceptions() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` (outermost call, main thread only; a
    signal that was ignored when the command started, as for background jobs, stays ignored)."""
    outermost = _state["depth"] == 0
    previous = {}
    if outermost:
        _state.update(signal=None, reported=False)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                handler = signal.getsignal(signum)
                if handler is not signal.SIG_IGN:
                    previous[signum] = handler
                    signal.signal(signum, _raise_interrupted)
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupted(name: str, signum: int, hint: str) -> SystemExit:
    if not _state["reported"]:
        _state["reported"] = True
        what = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"{name}: interrupted ({what}); finished outputs are kept and no partial file is "
              f"left; {hint}", file=sys.stderr, flush=True)
    return SystemExit(128 + signum)


# ---------------------------------------------------------------------------------------------
# the boundary
# ---------------------------------------------------------------------------------------------

def call(name: str, body: Callable[..., Any], *args: Any, hint: str = CONTINUE) -> Any:
    """``body(*args)`` inside the boundary: its value, or SystemExit with the status above."""
    try:
        with _signals_as_exceptions():
            return body(*args)
    except SystemExit as exit_:
        if _state["signal"] is not None and exit_.code not in (0, None):
            # a library that exits on KeyboardInterrupt (Lightning: status 1) was interrupted
            raise _interrupted(name, _state["signal"], hint) from None
        raise
    except KeyboardInterrupt as interrupt:
        raise _interrupted(name, getattr(interrupt, "signum", signal.SIGINT), hint) from None
    except Exception as error:  # the boundary: everything that escapes a command ends here
        line = describe(error)
        if line is not None:
            print(f"{name}: {line}", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_INPUT) from None
        traceback.print_exc()
        print(f"{name}: unexpected {type(error).__name__}: this is a bug in stsanet, not in your "
              f"input; please report it with the traceback above and the command line",
              file=sys.stderr, flush=True)
        raise SystemExit(EXIT_BUG) from None


def _status(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message"), as Python itself would
    return 1


def command(name: str, hint: str = CONTINUE):
    """Decorator for an argparse entry point ``main(argv=None) -> exit code | None``; the
    decorated ``main(argv)`` returns the exit status (console scripts exit with it)."""

    def decorate(main: Callable[[list[str] | None], int | None]):
        @functools.wraps(main)
        def wrapper(argv: list[str] | None = None) -> int:
            try:
                return _status(call(name, main, argv, hint=hint))
            except SystemExit as exit_:
                return _status(exit_.code)

        return wrapper

    return decorate


@contextlib.contextmanager
def _argv(name: str, argv: list[str] | None) -> Iterator[None]:
    if argv is None:
        yield
        return
    saved = sys.argv
    sys.argv = [name, *argv]
    try:
        yield
    finally:
        sys.argv = saved


@contextlib.contextmanager
def _hydra_reraises() -> Iterator[None]:
    """Hydra prints an exception from composition (or its task function) itself and exits 1,
    unless HYDRA_FULL_ERROR is set; then it re-raises it, to this boundary."""
    saved = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved


def hydra_command(name: str, config_name: str, hint: str = CONTINUE):
    """Decorator turning ``body(cfg) -> exit code | value | None`` into a Hydra app's
    ``main(argv=None)``. An int is the exit status; another value (a sweeper's metric) is
    returned to Hydra."""
    import hydra

    from stsanet.runs.config import CONF_SOURCE

    def decorate(body: Callable[[Any], Any]):
        def task(cfg):
            value = call(name, body, cfg, hint=hint)
            if isinstance(value, int) and not isinstance(value, bool) and value:
                raise SystemExit(value)
            return None if isinstance(value, int) and not isinstance(value, bool) else value

        # Hydra names the job after the task function's module (console scripts) or file
        task.__module__, task.__name__ = body.__module__, body.__name__
        task.__qualname__, task.__doc__ = body.__qualname__, body.__doc__
        hydra_main = hydra.main(version_base="1.3", config_path=CONF_SOURCE,
                                config_name=config_name)(task)

        def compose_and_run() -> None:
            with _hydra_reraises():
                hydra_main()

        def main(argv: list[str] | None = None) -> int:
            """The exit status (console scripts exit with it)."""
            with _argv(name, argv):
                try:
                    call(name, compose_and_run, hint=hint)
                except SystemExit as exit_:
                    return _status(exit_.code)
            return 0

        main.__doc__ = body.__doc__
        return main

    return decorate
