"""Reading a result's file at search time, whatever it has become since it was indexed."""

from __future__ import annotations

import os
import stat

# While the index is stale (``--no-refresh``, or another process is its writer) a result's file may have become
# anything: a FIFO (a blocking open or read would hang a command, or cost a server a worker thread per search),
# /dev/zero (endless), or a file far larger than anything indexed.
MAX_READ_BYTES = 16 << 20


def read_regular_file(path: str, limit: int = MAX_READ_BYTES) -> bytes | None:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes, else None; never blocks.

    The open is non-blocking (a FIFO opens at once), the type is checked on the open descriptor (no race with
    a swap after a stat), and the read stops past ``limit`` whatever the file claims its size is.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        parts: list[bytes] = []
        total = 0
        while total <= limit:
            block = os.read(fd, min(limit + 1 - total, 1 << 20))
            if not block:
                break
            parts.append(block)
            total += len(block)
        return None if total > limit else b"".join(parts)
    except OSError:
        return None
    finally:
        os.close(fd)
