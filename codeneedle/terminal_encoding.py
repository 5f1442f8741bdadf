"""The command line under any locale: Needle runs in Python's UTF-8 mode (file names, queries and output read and
written as UTF-8), and a terminal in a legacy encoding still gets what it can show. Only the `needle` command's own
entry point uses it (``cli.main``); a leaf module, as the training stack runs without the rest of the package."""

from __future__ import annotations

import contextlib
import os
import sys

REEXEC_ENV = "NEEDLE_UTF8_REEXEC"
# The restarted process's record of the first one's legacy encoding (Latin-1, cp1252, ...): what the terminal
# writes, what it shows and what the query on the command line was typed in. None: UTF-8, ASCII, or no restart.
_TYPED_ENCODING: str | None = None


def restart_in_utf8_mode() -> None:
    """Run the command under Python's UTF-8 mode, whatever the locale says.

    Python turns UTF-8 mode on by itself for the C locale, but not with ``PYTHONUTF8=0`` or a legacy locale
    (``de_DE.ISO-8859-1``): file names were then decoded by the locale, so under ``LC_ALL=C PYTHONUTF8=0`` every
    non-ASCII name came back as surrogates, was skipped as a bad name and dropped from the index that UTF-8 runs
    had built (re-added by the next one), a non-ASCII query was refused as "not valid Unicode", and the first
    result with a non-ASCII path or snippet ended the command in a UnicodeEncodeError traceback. The process is
    started again the same way under ``-X utf8`` (the first ``-X utf8`` given wins); once: the environment marks
    the second start, which takes the mark away again (``_after_restart``)."""
    if REEXEC_ENV in os.environ:
        _after_restart(os.environ.pop(REEXEC_ENV))
        return
    if sys.flags.utf8_mode or sys.getfilesystemencoding().lower().replace("-", "") == "utf8":
        return
    if not sys.executable or len(sys.orig_argv) < 2:
        return
    import json

    encodings = [getattr(s, "encoding", None) for s in (sys.stdin, sys.stdout, sys.stderr)]
    os.environ[REEXEC_ENV] = json.dumps({"PYTHONUTF8": os.environ.get("PYTHONUTF8"), "streams": encodings,
                                         "argv": sys.getfilesystemencoding()})
    os.environ["PYTHONUTF8"] = "1"  # for the flags parsed before -X (PYTHONUTF8=0 would otherwise stand)
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    os.execv(sys.executable, [sys.executable, "-X", "utf8", *sys.orig_argv[1:]])


def _after_restart(mark: str) -> None:
    """In the restarted process: the environment as the user gave it (the processes Needle starts, an editor
    from ``--open`` above all, are not put in UTF-8 mode for Needle's sake; a ``needle`` among them restarts on
    its own), and a terminal in a legacy 8-bit encoding keeps it. UTF-8 mode made every stream UTF-8: a Latin-1
    terminal showed ``cafÃ©`` for ``café``, and a query typed there (``caf\xe9``) was refused as "not valid
    Unicode", though both worked before the restart. An ASCII one (the C locale) gets UTF-8, as Python's own UTF-8
    mode gives it."""
    global _TYPED_ENCODING
    import codecs
    import json

    try:
        saved = json.loads(mark)
        original, streams, typed = saved["PYTHONUTF8"], list(saved["streams"]), saved["argv"]
    except (ValueError, TypeError, KeyError):
        return
    if original is None:
        os.environ.pop("PYTHONUTF8", None)
    else:
        os.environ["PYTHONUTF8"] = str(original)

    def legacy(encoding: object) -> str | None:
        try:
            name = codecs.lookup(str(encoding)).name if encoding else None
        except LookupError:
            return None
        return None if name in (None, "utf-8", "ascii") else name

    for stream, encoding in zip((sys.stdin, sys.stdout, sys.stderr), streams, strict=False):
        current = getattr(stream, "encoding", None)
        if (wanted := legacy(encoding)) and legacy(current) != wanted:
            with contextlib.suppress(AttributeError, ValueError, LookupError):
                stream.reconfigure(encoding=wanted)
    _TYPED_ENCODING = legacy(typed)


def as_typed(text: str | None) -> str | None:
    """A query from the command line as the user typed it: under UTF-8 mode its bytes were read as UTF-8, but a
    terminal in a legacy encoding wrote them in that (see ``_after_restart``). File names and globs stay as they
    were read: they are bytes of names on disk, as the walker reads them."""
    if not text or _TYPED_ENCODING is None:
        return text
    try:
        return os.fsencode(text).decode(_TYPED_ENCODING)
    except (UnicodeError, LookupError):
        return text


def printable_streams() -> None:
    """An output that cannot encode what Needle prints (``PYTHONIOENCODING=ascii``) shows it escaped
    (``caf\\xe9.py``) instead of ending the command in a UnicodeEncodeError traceback."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            "\u00e9\u2026\u2501".encode(encoding)
        except (UnicodeEncodeError, LookupError):
            with contextlib.suppress(AttributeError, ValueError):
                stream.reconfigure(errors="backslashreplace")


def redraws(stream) -> bool | None:
    """rich's ``force_interactive`` for a console on ``stream``: False where ``FORCE_COLOR`` makes rich take a pipe
    or a log for a terminal, None (rich decides) elsewhere. ``FORCE_COLOR=1`` (set in many CI setups for coloured
    logs) asks for colours, not for a live display: a progress bar redrew itself ten times a second into the log,
    one cursor-movement line after another, and the plain progress lines written off a terminal were gone.
    ``TTY_INTERACTIVE`` (rich's own switch) still decides where it is set."""
    if "FORCE_COLOR" not in os.environ or "TTY_INTERACTIVE" in os.environ:
        return None
    try:
        return None if stream.isatty() else False
    except (AttributeError, ValueError, OSError):  # a closed or replaced stream is no terminal
        return False
