"""``<script>`` blocks of Vue, Svelte and Astro components and of HTML pages, chunked as JavaScript or TypeScript.

Each script's body is chunked alone in its language (``<script lang="ts">``, ``<script setup>``, Svelte's
``<script module>``, an Astro component's ``---`` frontmatter) and moved back onto the file, so byte ranges and
line numbers are the file's own. Everything around the scripts (template, markup, styles, the script tags
themselves) becomes ``text`` windows carrying the host's name (``vue``); a window of script tags alone is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from codeneedle.indexer.chunks import TEXT, Chunk, shifted
from codeneedle.indexer.formats import Cutter

HOSTS = frozenset({"vue", "svelte", "astro", "html"})

# A comment is skipped whole: a commented-out <script> is not code.
_OPENING = re.compile(rb"<!--|<script\b", re.I)
# The rest of a script tag: its attributes, whose values may hold ">" (Vue's `generic="T extends Map<K, V>"`).
_TAG_REST = re.compile(rb"((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>")
_CLOSE = re.compile(rb"</script\s*>", re.I)
_ATTRIBUTE = re.compile(rb"""([^\s=/>"']+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?""")
# Astro's component script: a `---` fence on the first line, up to the next `---` line.
_FRONTMATTER = re.compile(rb"\A\s*---[ \t]*\r?\n(.*?)^---[ \t]*\r?$", re.S | re.M)

# A markup window holding nothing but script tags (or Astro's fence) between two scripts: nothing to find there.
_TAGS_ONLY = re.compile(r"\s*(?:(?:</?script\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>|---)\s*)*")

# `type` values that mean script code; any other (`text/x-template`, `application/json`, `importmap`) is data.
_JS_TYPES = frozenset({"", "module", "text/javascript", "application/javascript", "text/ecmascript",
                       "application/ecmascript", "application/x-javascript", "text/babel", "text/jsx"})
_TS_TYPES = frozenset({"text/typescript", "application/typescript", "module/typescript"})
_LANGS = {"js": "javascript", "javascript": "javascript", "jsx": "javascript", "mjs": "javascript",
          "ts": "typescript", "typescript": "typescript", "tsx": "tsx"}
# An Astro component's scripts are TypeScript unless they say otherwise; elsewhere JavaScript is the default.
_DEFAULT_LANGUAGE = {"astro": "typescript"}


@dataclass(frozen=True, slots=True)
class Script:
    """One script body: ``[start, end)`` in the file's bytes, and the language it is written in."""

    start: int
    end: int
    language: str


def script_language(attributes: bytes, host: str) -> str | None:
    """The language a ``<script ...>`` tag's attributes say its body is in, or None when it is no script code
    (a template, JSON, CoffeeScript)."""
    attrs: dict[str, str] = {}
    for name, value in _ATTRIBUTE.findall(attributes):
        attrs[name.decode("latin-1").lower()] = value.strip(b"\"'").decode("latin-1").strip().lower()
    kind = attrs.get("type")
    if kind is not None and kind not in _JS_TYPES and kind not in _TS_TYPES:
        return None
    if attrs.get("lang"):
        return _LANGS.get(attrs["lang"])
    if kind in _TS_TYPES:
        return "typescript"
    return _DEFAULT_LANGUAGE.get(host, "javascript")


def scripts(data: bytes, host: str) -> list[Script]:
    """The script bodies of a component or page, in file order (blank ones left out)."""
    found: list[Script] = []
    position = 0
    if host == "astro" and (front := _FRONTMATTER.match(data)) is not None:
        found.append(Script(front.start(1), front.end(1), "typescript"))
        position = front.end()
    while (opening := _OPENING.search(data, position)) is not None:
        if opening.group() == b"<!--":
            position = data.find(b"-->", opening.end()) + 3
            if position < 3:
                break  # an unclosed comment runs to the end
            continue
        tag = _TAG_REST.match(data, opening.end())
        if tag is None:
            break  # an unclosed tag (or quote) runs to the end: nothing after it is a script, and no rescan
        position = tag.end()
        attributes = tag.group(1)
        if attributes.rstrip().endswith(b"/"):
            continue  # <script src="..." />: no body
        close = _CLOSE.search(data, position)
        end = close.start() if close is not None else len(data)
        language = script_language(attributes, host)
        if language is not None and data[position:end].strip():
            found.append(Script(position, end, language))
        position = close.end() if close is not None else len(data)
    return found


def chunk_host(path: str, data: bytes, host: str, cutter: Cutter) -> list[Chunk]:
    """A component's or page's chunks: its scripts' definitions and blocks, text windows over the rest."""
    chunks: list[Chunk] = []
    gaps: list[tuple[int, int]] = []
    position = lines = 0
    for script in scripts(data, host):
        gaps.append((position, script.start))
        lines += data.count(b"\n", position, script.start)
        body = data[script.start : script.end]
        chunks.extend(shifted(c, script.start, lines) for c in cutter.code(path, body, script.language))
        lines += body.count(b"\n")
        position = script.end
    gaps.append((position, len(data)))
    chunks.extend(w for w in cutter.windows(path, data, host, gaps, TEXT) if not _TAGS_ONLY.fullmatch(w.text))
    chunks.sort(key=lambda c: (c.start_byte, -c.end_byte))
    return chunks
