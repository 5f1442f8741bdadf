"""One writer per index across processes: CLI, watcher and language server share a lock file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from filelock import FileLock, Timeout

from codeneedle.errors import IndexLockedError, IndexReadOnlyError, NeedleError


class WriterLock:
    """An exclusive, non-blocking writer lock on an index folder; the holder's pid is recorded for messages."""

    def __init__(self, index_dir: Path):
        self.index_dir = index_dir
        self._lock = FileLock(str(index_dir / "writer.lock"), thread_local=False)
        self._pid_file = index_dir / "writer.pid"

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def acquire(self) -> None:
        """Take the lock now or raise IndexLockedError naming the process that has it."""
        if self._lock.is_locked:
            return
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            holder = self._pid_file.read_text().strip() if self._pid_file.exists() else "unknown"
            raise IndexLockedError(
                f"index {self.index_dir} is being written by another needle process (pid {holder}); "
                "searches still work, or stop that process to write"
            ) from None
        except OSError as exc:  # read-only or full disk, folder gone: a one-line error, not a traceback
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and (self.index_dir / "index.db").exists():
                raise IndexReadOnlyError(
                    f"the index in {self.index_dir} is read-only for you ({exc.strerror}): it can be searched as "
                    "it is, not updated") from None
            raise NeedleError(f"cannot take the writer lock in {self.index_dir}: {exc.strerror or exc}") from None
        try:
            # Never through a link: a planted writer.pid -> ~/.bashrc was truncated to a pid.
            fd = os.open(self._pid_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
        except OSError:
            pass  # only used to name the holder in messages

    def taken_elsewhere(self) -> bool:
        """Whether another process is the writer now (a probe: takes nothing, writes nothing)."""
        if self._lock.is_locked:
            return False
        probe = FileLock(str(self.index_dir / "writer.lock"), thread_local=False)
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return True
        except OSError:
            return False  # no lock to be had at all: acquire() says why when it matters
        probe.release(force=True)
        return False

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release(force=True)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (another user's counts: it may not be signalled, but it runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
