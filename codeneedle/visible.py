"""Text shown, never obeyed: control and format characters spelt out for a plain write to a terminal.

Its own leaf module (no rich, nothing of the indexer), so that the command's entry point and the training stack,
which run without the rest of the package loaded, write their error lines through it too.
"""

from __future__ import annotations


def visible(text: str, code: bool = False) -> str:
    r"""``text`` for a plain write to the terminal (no rich markup there): control and format characters shown as
    ``\x1b``, ``\u202e``, ... (what escape_text does, leaving ``[`` alone). A tab in a file name or a heading is
    ``\t`` (expanded, it read as spaces: `a<TAB>b.py` as `a       b.py`, and pushed the rest of the line along);
    ``code`` keeps its tabs."""
    if not text.isprintable():
        kept = " \t" if code else " "
        text = "".join(ch if ch.isprintable() or ch in kept else _visible(ch) for ch in text)
    return text


def _visible(ch: str) -> str:
    code = ord(ch)
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch) or (
        f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
