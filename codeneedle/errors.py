"""Errors that reach a user as one clear line (the CLI prints them without a traceback)."""


class NeedleError(Exception):
    """Base for every error Needle reports to a user."""


class IndexLockedError(NeedleError):
    """Another process holds the index's writer lock."""


class IndexReadOnlyError(IndexLockedError):
    """The index lies where nothing may be written (a read-only mount, another user's copy): readable, never
    updated. A kind of IndexLockedError: whoever reads a locked index as it is reads this one so too."""


class IndexMissingError(NeedleError):
    """No index exists where one was expected."""


class IndexStartingError(IndexMissingError):
    """The index is being created by another process and holds nothing readable yet."""


class PathOutsideRootError(NeedleError):
    """A path names something outside the indexed root."""


class ModelNotFoundError(NeedleError):
    """An encoder's weights cannot be found on disk."""


class IndexLostError(NeedleError):
    """The index's folder or database was deleted, replaced or truncated while it was open."""


class IndexWriteError(NeedleError):
    """The index could not be written (or opened) just now: a full disk, the file size limit, an I/O error. The
    file itself is intact: what it holds can still be read, and the next update goes on from there."""
