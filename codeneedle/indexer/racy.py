"""Whether a file's size and mtime can stand for its bytes.

An update reads a file only when its size or mtime moved. A file written again in the same tick of the file
system's clock as the version that was read keeps its mtime, and with the same size it would keep its old chunks
until its next change. The tick is 1 s on HFS+ and ext3, 2 s on FAT and a few ms on ext4 before Linux 6.13; git
calls such entries "racily clean". A file read less than a tick after its mtime is recorded with no mtime, so the
next update reads it again (the hash says whether it changed; nothing is embedded again if not).
"""

from __future__ import annotations

import time

TICK_NS = 2 * 10**9  # FAT's, the coarsest in use
UNSETTLED_MTIME = -1  # no file carries it (0 does: cramfs, archives dated by SOURCE_DATE_EPOCH=0)


def settled(mtime_ns: int, read_at_ns: int | None = None) -> bool:
    """True when no write after ``read_at_ns`` (now by default) can leave the file with mtime ``mtime_ns``.

    An mtime ahead of the clock by under a tick counts as unsettled too; one further ahead is another clock's
    (an archive's dates, a skewed server) and no write of ours can match it."""
    now = time.time_ns() if read_at_ns is None else read_at_ns
    return abs(now - mtime_ns) >= TICK_NS


def recorded_mtime(mtime_ns: int, read_at_ns: int) -> int:
    """The mtime to record for bytes read at ``read_at_ns`` (taken before the read) of a file stat'ed at
    ``mtime_ns``."""
    return mtime_ns if settled(mtime_ns, read_at_ns) else UNSETTLED_MTIME
