"""The watcher's inotify watches: only on folders the walk enters, and a one-line answer to the kernel's limits.

watchdog's recursive observer puts an inotify watch on every folder below the root: 1,935 on a small JS project
whose sources sit in 11 folders beside a ``node_modules/``, 6,039 with a gitignored ``venv/``. The watches come out
of a per-user budget (``fs.inotify.max_user_watches``) that editors and every other watcher share, and every
``npm install`` or ``cargo build`` woke the watcher for files nobody indexes. ``pruned_observer`` watches only the
folders a ``keep`` predicate accepts (the watcher's: what the walk enters), for folders created or moved in later
too, and ``resync`` follows a change of the ignore rules. It builds on watchdog's inotify watch tree (7.1); with
another watchdog, or on another platform, the plain recursive observer watches everything as before.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("codeneedle.watcher")

LIMIT_ERRNOS = frozenset({errno.ENOSPC, errno.EMFILE})
KeepFn = Callable[[bytes], bool]
LimitFn = Callable[[OSError], None]


def limit_message(exc: OSError, root: object, rescan_s: float) -> str:
    """One line: which limit stopped watching ``root``, what happens instead, and how to raise it."""
    then = f"rescanning for changes every {rescan_s:g} s instead"
    if exc.errno == errno.EMFILE and _fds_exhausted():
        soft = _nofile()
        return (f"cannot watch {root}: this process's open-file limit is reached (ulimit -n = {soft}); {then}. "
                f"To watch, raise it: ulimit -n {max(4 * soft, 4096)}")
    what, key, floor = (("watch", "max_user_watches", 524288) if exc.errno == errno.ENOSPC
                        else ("instance", "max_user_instances", 1024))
    current = _sysctl(f"fs/inotify/{key}")
    now = f" = {current}" if current else ""
    return (f"cannot watch {root}: the inotify {what} limit is reached (fs.inotify.{key}{now}, shared by all of "
            f"this user's programs); {then}. To watch, raise it: "
            f"sudo sysctl fs.inotify.{key}={max(2 * (current or 0), floor)}")


def discard(observer: Any) -> None:
    """Stop an observer, started or not (a start refused by a limit): its inotify instance and threads go with it."""
    with contextlib.suppress(Exception):
        observer.stop()  # stops and joins its inotify reader
    with contextlib.suppress(RuntimeError):  # never started
        observer.join(timeout=5)
    reader = getattr(observer, "_inotify_fd", None)
    # watchdog 7.1 closes the instance from its reader thread, unless the reader was stopped before its first poll
    # (a start refused by the watch limit, a stop right after a start): then the descriptor stays open until the
    # process ends, one more instance out of the user's max_user_instances each time.
    if (reader is not None and not reader.is_alive() and getattr(reader, "_closed", False)
            and getattr(reader, "_is_reading", False) and hasattr(reader, "_close_resources")):
        reader._is_reading = False
        with contextlib.suppress(OSError):
            reader._close_resources()


# File systems other machines write to (a file server, a VM's host, Windows under WSL 2): inotify hears only what
# this machine does through the mount, never an edit made on the other side.
REMOTE_FS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "ceph", "glusterfs", "lustre", "gpfs", "beegfs", "ocfs2",
    "gfs2", "9p", "virtiofs", "vboxsf", "vmhgfs", "prl_fs", "drvfs", "davfs", "fuse.sshfs", "fuse.rclone",
    "fuse.s3fs", "fuse.gcsfuse", "fuse.glusterfs", "fuse.vmhgfs-fuse", "fuse.davfs2", "fuse.cephfs",
})


def remote_fs(path: str | os.PathLike[str], mountinfo: bytes | None = None) -> str | None:
    """The type of the shared file system ``path`` lies on (one of REMOTE_FS), else None; ``mountinfo`` is
    ``/proc/self/mountinfo`` (read when None; nothing is known where it cannot be)."""
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo", "rb") as fh:
                mountinfo = fh.read()
        except OSError:
            return None
    target = os.fsencode(os.path.realpath(path))
    best, fstype = b"", b""
    for line in mountinfo.splitlines():
        fields = line.split(b" ")
        if b" - " not in line or len(fields) < 5:
            continue
        # The kernel writes a space in a mount point as \040 (and a backslash as \134); the last mount on a point
        # is the one seen there.
        point = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8) & 0xFF]), fields[4])
        inside = target == point or target.startswith(point.rstrip(b"/") + b"/")
        if inside and len(point) >= len(best):
            best, fstype = point, line.split(b" - ", 1)[1].split(b" ", 1)[0]
    name = fstype.decode("utf-8", "replace")
    return name if name in REMOTE_FS else None


def remote_message(fstype: str, root: object, rescan_s: float) -> str:
    """One line: why changes to ``root`` can go unheard, and what happens instead."""
    return (f"{root} is on {fstype}: changes made from another machine (or the host) raise no event here; "
            f"rescanning for them every {rescan_s:g} s")


def _sysctl(name: str) -> int | None:
    try:
        with open(f"/proc/sys/{name}") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def _fds_exhausted() -> bool:
    """Whether EMFILE came from this process's file-descriptor table rather than the per-user inotify count."""
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError as exc:
        return exc.errno == errno.EMFILE  # not even the listing's own descriptor
    return used + 1 >= _nofile()


def _nofile() -> int:
    import resource  # Unix only, like inotify

    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pruned_observer(keep: KeepFn, on_limit: LimitFn) -> Any | None:
    """An inotify observer that watches only folders ``keep`` accepts (the scheduled root always), or None where
    watchdog's internals are not the ones this is written against (the caller then uses watchdog's ``Observer``).

    ``on_limit`` hears that a folder created later (or let in by ``resync``) could not be watched: the kernel's watch
    limit. At start the limit raises its OSError from ``schedule()`` or ``start()`` instead.
    """
    classes = _classes()
    if classes is None:
        return None
    observer_cls, emitter_cls = classes
    observer = observer_cls()
    observer._emitter_class = emitter_cls
    observer._emitter_kwargs.update(keep=keep, on_limit=on_limit)
    return observer


def resync(observer: Any) -> None:
    """Watch folders the ``keep`` predicate now accepts and drop the watches of those it now refuses."""
    for emitter in list(getattr(observer, "emitters", ())):
        group = getattr(emitter, "_inotify", None)
        if group is not None and hasattr(group, "resync"):
            group.resync()


_CLASSES: tuple[type, type] | None | bool = False


def _classes() -> tuple[type, type] | None:
    global _CLASSES
    if _CLASSES is False:
        try:
            _CLASSES = _define() if sys.platform.startswith("linux") else None
        except Exception as exc:  # noqa: BLE001 - e.g. watchdog's UnsupportedLibcError: watch as watchdog does
            log.debug("watching every folder: watchdog's inotify internals differ (%s)", exc)
            _CLASSES = None
    return _CLASSES  # type: ignore[return-value]


def _define() -> tuple[type, type] | None:
    from watchdog.observers import inotify
    from watchdog.observers.api import BaseObserver
    from watchdog.version import VERSION_MAJOR

    if VERSION_MAJOR != 7:  # private parts: another major version may keep their names and change what they do
        return None

    group_base, emitter_base, observer_base = inotify.InotifyWatchGroup, inotify.InotifyEmitter, inotify.InotifyObserver
    needed = ("_add_all_callbacks", "_add_callback", "_recursive_simulate", "_find_node_by_path", "_insert_node",
              "_remove_node_and_watches", "_active_callbacks_by_watch", "build_event_mask")
    if (not all(hasattr(group_base, name) for name in needed) or not hasattr(BaseObserver, "_add_emitter")
            or not hasattr(emitter_base, "get_event_mask_from_filter")):
        return None
    invalid_wd = inotify._INVALID_WD

    @dataclass
    class PrunedGroup(group_base):  # type: ignore[misc, valid-type]
        keep: KeepFn = lambda path: True  # noqa: E731
        on_limit: LimitFn = lambda exc: None  # noqa: E731

        def _add_all_callbacks(self, path: bytes) -> None:
            # Reached at start (the limit error then fails start()), for a folder created or moved in, after a
            # queue overflow and from resync (the limit then leaves the rest unwatched, and on_limit hears it).
            try:
                self._add_pruned(path)
            except OSError as exc:
                if exc.errno not in LIMIT_ERRNOS or not self.is_active:
                    raise
                self.on_limit(exc)

        def _add_pruned(self, path: bytes) -> None:
            if path != self.path and not self.keep(path):
                return
            self._add_callback(path)
            if not (self.is_recursive and os.path.isdir(path)):
                return
            for top, dirnames, _ in os.walk(path):
                kept = []
                for name in dirnames:
                    full = os.path.join(top, name)
                    if os.path.islink(full) or not self.keep(full):
                        continue  # an ignored folder: neither watched nor listed
                    kept.append(name)
                    self._add_callback(full)
                dirnames[:] = kept

        def _add_callback(self, path: bytes) -> None:
            # watchdog's own logs a warning per folder past the limit (thousands of lines on stderr) and goes on.
            if (existing := self._find_node_by_path(path)) is not None and existing.wd != invalid_wd:
                return
            try:
                wd = self._inotify_fd.add_callback(path, self.event_mask, self._callback, self._id)
            except OSError as exc:
                if exc.errno in LIMIT_ERRNOS or path == self.path:
                    raise
                return  # gone or unreadable meanwhile: its parent's events still tell
            if self._insert_node(path, wd) is None:
                self._inotify_fd.remove_callbacks([(wd, self._id)])

        def _recursive_simulate(self, src_path: bytes) -> list:
            # watchdog lists a new folder's whole subtree to report what it holds; an unwatched (ignored) folder's
            # content is nobody's news, and a fresh node_modules/ can hold thousands of folders.
            events = []
            for top, dirnames, filenames in os.walk(src_path):
                node = self._find_node_by_path(top)
                if node is None:
                    dirnames[:] = []
                    continue
                events += [inotify.InotifyEvent(node.wd, inotify.InotifyConstants.IN_CREATE
                                                | inotify.InotifyConstants.IN_ISDIR, 0, name) for name in dirnames]
                events += [inotify.InotifyEvent(node.wd, inotify.InotifyConstants.IN_CREATE, 0, name)
                           for name in filenames]
            return events

        def resync(self) -> None:
            with self._lock:
                if not self.is_active:
                    return
                for wd, path in self._active_callbacks_by_watch.items():
                    node = self._nodes_by_wd.get(wd)
                    if node is not None and path != self.path and not self.keep(path):
                        self._remove_node_and_watches(node, path)
                self._add_all_callbacks(self.path)

    class PrunedEmitter(emitter_base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, keep: KeepFn, on_limit: LimitFn, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.keep, self.on_limit = keep, on_limit

        def on_thread_start(self) -> None:
            self._inotify = PrunedGroup(self._inotify_fd, os.fsencode(self.watch.path),
                                        event_mask=self.get_event_mask_from_filter(),
                                        is_recursive=self.watch.is_recursive, follow_symlink=False,
                                        keep=self.keep, on_limit=self.on_limit)

    return observer_base, PrunedEmitter
