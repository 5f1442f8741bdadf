"""Generate the bad-input corpus of issue 7: messy and hostile trees, written fresh, never committed.

``make_corpus(dest)`` builds ``dest/repo`` (the tree to index) and ``dest/outside`` (what links point
at, which must never be read) and returns a manifest: for each path under the root, what the walker
must say (``walk``: a skip reason, or None for "indexed") and, for indexed files, what
``read_source`` must say (``read``: a skip reason, or None for "returns the bytes").

Run as a script to inspect a corpus: ``python tests/badinput/make_corpus.py /tmp/corpus``.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BIG_FILE_BYTES = 50 * 1024 * 1024
LONG_LINE_BYTES = 5 * 1024 * 1024
NESTING = 10_000
DIR_DEPTH = 200  # deep enough to hurt recursion-based walkers, shallow enough for rmtree's recursion
OUTSIDE_SENTINEL = b"OUTSIDE_THE_ROOT_MUST_NEVER_BE_READ = True\n"


def permissions_enforced(folder: Path) -> bool:
    """Whether chmod 000 actually denies reading here (not as root, not with CAP_DAC_OVERRIDE)."""
    probe = folder / ".permission-probe"
    probe.write_bytes(b"x")
    probe.chmod(0)
    try:
        with open(probe, "rb"):
            return False
    except PermissionError:
        return True
    finally:
        probe.chmod(0o600)
        probe.unlink()


def make_corpus(dest: Path) -> dict[str, Any]:
    """Write the corpus under ``dest`` and return its manifest.

    Manifest keys: ``root`` and ``outside`` (str paths), ``permissions_enforced`` (bool),
    ``chmodded`` (paths to make writable again before deleting the corpus, see
    :func:`restore_permissions`) and ``entries``: ``{rel_path: {"walk": reason|None, "read":
    reason|None, "what": description}}``. Undecodable names appear as the walker reports them
    (``\\xNN`` escapes).
    """
    dest = Path(dest)
    root = dest / "repo"
    outside = dest / "outside"
    root.mkdir(parents=True)
    outside.mkdir(parents=True)
    entries: dict[str, dict[str, Any]] = {}
    chmodded: list[str] = []

    def expect(rel: str, walk: str | None, what: str, read: str | None = None) -> None:
        entries[rel] = {"walk": walk, "read": read, "what": what}

    def write(rel: str, data: bytes) -> Path:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def link(rel: str, target: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)

    # What links point at: a sentinel that a test can look for in anything the indexer read.
    (outside / "secret_outside.py").write_bytes(OUTSIDE_SENTINEL)
    (outside / "dir").mkdir()
    (outside / "dir" / "inner.py").write_bytes(OUTSIDE_SENTINEL)
    (outside / "ignore_everything").write_bytes(b"*\n")

    write("ok.py", b"def ok():\n    return 1\n")
    expect("ok.py", None, "plain source: the control")

    # Binary content behind source extensions.
    write("binary_blob.py", bytes(range(256)) * 64)
    expect("binary_blob.py", None, "binary bytes with a .py name", read="binary")
    write("image_named.js", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(2048))
    expect("image_named.js", None, "a PNG with a .js name", read="binary")

    # Encodings.
    write("latin1.py", "# café au lait\nname = 'naïve façade'\n".encode("latin-1"))
    expect("latin1.py", None, "latin-1 text (invalid UTF-8)")
    write("utf16_bom.py", codecs.BOM_UTF16_LE + "def f():\n    return 'x'\n".encode("utf-16-le"))
    expect("utf16_bom.py", None, "UTF-16 with BOM: text (git calls it binary), read through its mark")
    write("utf16_no_bom.py", "def f():\n    return 'x'\n".encode("utf-16-le"))
    expect("utf16_no_bom.py", None, "UTF-16 without a mark: NUL bytes, so binary as for git", read="binary")
    write("invalid_utf8.rs", b'fn main() { let s = "\xff\xfe\xc3\x28\xa0\xa1"; }\n')
    expect("invalid_utf8.rs", None, "invalid UTF-8 sequences")
    write(
        "mixed_encodings.py",
        "a = 'ünïcode'\n".encode() + "b = 'latin é'\n".encode("latin-1") + "c = '€'\n".encode("cp1252"),
    )
    expect("mixed_encodings.py", None, "UTF-8, latin-1 and cp1252 lines in one file")

    # Size: the 50 MB file is written in 1 MiB blocks to keep memory flat.
    block = (b"def f_%07d():\n    return 0\n" % 0) * (1024 * 1024 // 28)
    with open(root / "huge_50mb.py", "wb") as fh:
        written = 0
        while written < BIG_FILE_BYTES:
            fh.write(block)
            written += len(block)
    expect("huge_50mb.py", "too_large", "a 50 MB source file")
    write("one_line_5mb.js", b"var x = [" + b"1," * (LONG_LINE_BYTES // 2) + b"];")
    expect("one_line_5mb.js", "too_large", "a single 5 MB line")

    # Nesting: in content (parser recursion) and in folders (walker recursion, long paths).
    write("deep_brackets.py", b"x = " + b"[" * NESTING + b"]" * NESTING + b"\n")
    expect("deep_brackets.py", None, f"{NESTING}-deep Python brackets")
    write("deep_braces.js", b"function f() " + b"{" * NESTING + b"}" * NESTING + b"\n")
    expect("deep_braces.js", None, f"{NESTING}-deep JavaScript braces")
    deep_rel = "/".join(["d"] * DIR_DEPTH) + "/leaf.py"
    write(deep_rel, b"LEAF = 1\n")
    expect(deep_rel, None, f"a file {DIR_DEPTH} folders deep")

    # Degenerate content.
    write("empty.py", b"")
    expect("empty.py", None, "an empty file")
    write("nonsense.py", b")]}{[( ::: def class @@@ ``` \\\\ => <- ;;; %% $$ \x1b[0m \x7f\n" * 20)
    expect("nonsense.py", None, "text that is valid in no grammar")
    write("notes.unknownext", b"plain text with an extension no grammar claims\n")
    expect("notes.unknownext", None, "an extension no grammar claims")

    # Permissions (root can read anything, so the expectation depends on who runs the tests).
    enforced = permissions_enforced(dest)
    denied_file = write("denied_file.py", b"SECRET_BUT_NOT_REALLY = 1\n")
    denied_file.chmod(0)
    chmodded.append(str(denied_file))
    expect("denied_file.py", "unreadable" if enforced else None, "chmod 000 file")
    denied_dir = root / "denied_dir"
    write("denied_dir/inside.py", b"INSIDE = 1\n")
    denied_dir.chmod(0)
    chmodded.append(str(denied_dir))
    if enforced:
        expect("denied_dir", "unreadable", "chmod 000 folder")
    else:
        expect("denied_dir/inside.py", None, "a file in a chmod 000 folder (readable as root)")

    # Symlinks: loops, escapes, dangling, and harmless aliases.
    link("loop_a", "loop_b")
    link("loop_b", "loop_a")
    expect("loop_a", "symlink_loop", "two links pointing at each other")
    expect("loop_b", "symlink_loop", "two links pointing at each other")
    link("self_loop", "self_loop")
    expect("self_loop", "symlink_loop", "a link pointing at itself")
    link("dir_to_root", ".")
    expect("dir_to_root", "symlink_loop", "a folder link to the root")
    write("sub/code.py", b"SUB = 1\n")
    expect("sub/code.py", None, "plain source in a subfolder")
    link("sub/up", "..")
    expect("sub/up", "symlink_loop", "a folder link to its parent")
    link("link_out_file.py", "../outside/secret_outside.py")
    expect("link_out_file.py", "symlink_outside", "a file link leaving the root")
    link("link_out_dir", "../outside/dir")
    expect("link_out_dir", "symlink_outside", "a folder link leaving the root")
    link("link_etc_passwd.py", "/etc/passwd")
    expect("link_etc_passwd.py", "symlink_outside", "an absolute link to a system file")
    link("link_fs_root", "/")
    expect("link_fs_root", "symlink_outside", "a link to the file system root")
    link("dangling.py", "does_not_exist.py")
    expect("dangling.py", "symlink_broken", "a link to nothing")
    link("alias.py", "ok.py")
    expect("alias.py", "symlink_duplicate", "a second name for ok.py")
    link("alias_dir", "sub")
    expect("alias_dir", "symlink_duplicate", "a second name for sub/")
    write(".env", b"API_TOKEN=hunter2\n")
    expect(".env", "secret", "dotenv file")
    link("innocent.py", ".env")
    expect("innocent.py", "secret", "a harmless-looking link to a secret")

    # Ignore files that are themselves hostile: they must neither be followed nor hang the walk.
    write("sub2/visible.py", b"VISIBLE = 2\n")
    link("sub2/.gitignore", "../../outside/ignore_everything")
    expect("sub2/.gitignore", "symlink_outside", "a .gitignore linking outside (git ignores it too)")
    expect("sub2/visible.py", None, "not hidden by the outside .gitignore")
    write("sub3/visible.py", b"VISIBLE = 3\n")
    os.mkfifo(root / "sub3" / ".gitignore")
    expect("sub3/.gitignore", "hidden", "a FIFO named .gitignore")
    expect("sub3/visible.py", None, "next to a FIFO .gitignore")

    # Names.
    for name in ("new\nline.py", "tab\tname.py", "ünïcødé.py", "日本語.py", "emoji_🚀.py", "spaces in name.py"):
        write(name, b"NAME = 1\n")
        expect(name, None, f"name {name!r}")
    bad_file = os.fsencode(root) + b"/bad\xff.py"
    with open(bad_file, "wb") as fh:
        fh.write(b"BAD = 1\n")
    expect("bad\\xff.py", "bad_name", "a name that is not valid UTF-8")
    os.mkdir(os.fsencode(root) + b"/bad_dir_\xfe")
    with open(os.fsencode(root) + b"/bad_dir_\xfe/inside.py", "wb") as fh:
        fh.write(b"INSIDE = 1\n")
    expect("bad_dir_\\xfe", "bad_name", "a folder name that is not valid UTF-8")

    # Special files.
    os.mkfifo(root / "pipe.py")
    expect("pipe.py", "special", "a FIFO with a source name (reading it would block)")

    # Defaults that keep secrets and noise out.
    write("server.pem", b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    expect("server.pem", "secret", "a private key")
    write("keys/id_rsa", b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    expect("keys/id_rsa", "secret", "an SSH key")
    write("config/credentials.json", b'{"token": "x"}\n')
    expect("config/credentials.json", "secret", "a credentials file")
    write("package-lock.json", b"{}\n")
    expect("package-lock.json", "noise", "a lock file")
    write("node_modules/lib/index.js", b"module.exports = 1;\n")
    expect("node_modules", "noise", "vendored dependencies")
    write(".hidden/tool.py", b"HIDDEN = 1\n")
    expect(".hidden", "hidden", "a hidden folder")

    return {
        "root": str(root),
        "outside": str(outside),
        "permissions_enforced": enforced,
        "chmodded": chmodded,
        "entries": entries,
    }


def restore_permissions(manifest: dict[str, Any]) -> None:
    """Make the corpus deletable again (undo its chmod 000)."""
    for path in manifest["chmodded"]:
        with contextlib.suppress(OSError):
            os.chmod(path, 0o700 if os.path.isdir(path) else 0o600)


class OpenRecorder:
    """Records every path the process opens or lists (``sys.addaudithook``), while active."""

    _installed: OpenRecorder | None = None
    _active: list[OpenRecorder] = []

    def __init__(self) -> None:
        self.paths: list[str] = []  # where each open or listing actually lands (symlinks resolved)

    @classmethod
    def _hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if not cls._active or event not in ("open", "os.scandir", "os.listdir", "codeneedle.open_beneath"):
            return
        target = args[0] if args else None
        if isinstance(target, int) or target is None:
            return  # an already open descriptor
        flags = args[2] if event == "open" and len(args) > 2 and isinstance(args[2], int) else 0
        if event == "open" and flags & os.O_NOFOLLOW and not os.path.isabs(os.fsdecode(os.fspath(target))):
            return  # one component of walker.open_beneath (relative to a folder fd): its full path comes below
        if event == "codeneedle.open_beneath":
            flags = os.O_NOFOLLOW  # every component is opened without following links
        path = os.path.abspath(os.fsdecode(os.fspath(target)))
        if flags & os.O_NOFOLLOW:
            # the kernel refuses a symlink as the last component, so only the folders are followed
            real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        else:
            real = os.path.realpath(path)
        for recorder in cls._active:
            recorder.paths.append(real)

    @classmethod
    @contextlib.contextmanager
    def recording(cls) -> Iterator[OpenRecorder]:
        """Context manager yielding a recorder for the opens that happen inside it."""
        if cls._installed is None:
            # Audit hooks cannot be removed; one hook serves every recorder of the process.
            sys.addaudithook(cls._hook)
            cls._installed = cls()
        recorder = cls()
        cls._active.append(recorder)
        try:
            yield recorder
        finally:
            cls._active.remove(recorder)

    def outside(self, root: str | os.PathLike[str]) -> list[str]:
        """Recorded paths whose real location is not under ``root``."""
        real_root = os.path.realpath(root)
        inside = real_root.rstrip("/") + "/"
        return [path for path in self.paths if path != real_root and not path.startswith(inside)]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_corpus.py DEST")
    made = make_corpus(Path(sys.argv[1]))
    json.dump(made, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
