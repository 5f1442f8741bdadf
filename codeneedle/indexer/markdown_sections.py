"""Markdown and reStructuredText cut at their headings: one ``text`` chunk per section, named after its heading and
the headings above it (``Install > From source``), a long section still in line windows.

What comes before the first heading keeps the file's name (markup alone there, a reST label or a README's
badges, joins the first section, and a label right above any heading starts its section); a document's single top heading is its title, left
out of the names of the sections under it. A heading with nothing under it but a sub-heading joins
that sub-section, so a title line is no chunk of its own. Fenced code blocks stay in their section's text, and a
``# comment`` inside one is no heading.
"""

from __future__ import annotations

import dataclasses
import re
from bisect import bisect_right
from dataclasses import dataclass

from codeneedle.indexer.chunks import TEXT, Chunk
from codeneedle.indexer.formats import Cutter

MAX_NAME_CHARS = 200
# Longer lines are no headings (and the heading pattern need not scan a minified line).
MAX_HEADING_BYTES = 1000
NAME_SEPARATOR = " > "

# An ATX heading's opening hashes; its words and closing hashes are cut by hand (a lazy `(.*?)` before an optional
# closing sequence rescanned each run of spaces: 1 MB of `# a<990 spaces>b` lines took 14 s).
_ATX_OPEN = re.compile(rb" {0,3}(#{1,6})(?=[ \t\r]|$)")
_FENCE = re.compile(rb" {0,3}(`{3,}|~{3,})")
# An HTML comment opening a line runs (CommonMark's HTML block) to the line that closes it: `# words` in it is none.
_COMMENT = re.compile(rb" {0,3}<!--")
# Label lines (and the blank lines after them) that end what comes before a heading: the heading's own targets.
_TRAILING_LABELS = re.compile(rb"(?:^[ \t]*(?:\.\. _[^\n]*:|<a\s+(?:name|id)\s*=\s*[\"'][^\"'\n]*[\"']\s*/?>(?:\s*</a>)?)"
                              rb"[ \t]*\r?\n(?:[ \t]*\r?\n)*)+\Z", re.M)
_LABELS_WINDOW = 2048
_SETEXT = re.compile(rb" {0,3}(=+|-+)[ \t]*\r?")
# Lines that cannot be a setext heading's text: list items, quotes, tables, indented code, HTML.
_NOT_TITLE = re.compile(rb"\s*(?:[-*+>|<]|\d+[.)]\s)|    |\t")
_RST_UNDERLINE = re.compile(rb"([=\-`:'\"~^_*+#<>])\1{2,}[ \t]*\r?")
_FRONT_MATTER = re.compile(rb"---[ \t]*\r?\n(?:.*?\n)?(?:---|\.\.\.)[ \t]*\r?(?:\n|\Z)", re.S)
# Inline markup that is no part of a heading's words: links and images keep their text, code and emphasis marks go.
# No bracket inside the text and one level of parentheses in the target (a wiki URL's `Foo_(bar)`): each `[` scans
# no further than the next (`[[[[...` used to be quadratic), and a badge inside a link is read inside out.
_LINK = re.compile(r"!?\[([^\[\]]*)\]\((?:[^()]|\([^()]*\))*\)")
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_MARKS = re.compile(r"`+|\*\*|__(?=\w)|(?<=\w)__")


@dataclass(frozen=True, slots=True)
class Heading:
    """A heading: the byte where its section starts, its level (1 = top) and its words."""

    start: int
    level: int
    title: str


def heading_title(raw: bytes) -> str:
    """A heading's words without their inline markup."""
    text = raw.decode("utf-8", "replace").strip()
    for _ in range(3):  # [![npm](badge.svg)](https://npmjs.com/x): the image, then the link around it
        text, links = _LINK.subn(r"\1", text)
        if not links:
            break
    text = _HTML_TAG.sub("", text)
    return " ".join(_MARKS.sub("", text).split())


def atx_heading(line: bytes) -> tuple[int, bytes] | None:
    """An ATX heading's level and words (``## Install ##`` -> ``(2, b"Install")``), or None for any other line."""
    opening = _ATX_OPEN.match(line)
    if opening is None:
        return None
    words = line[opening.end():].rstrip(b" \t\r")
    if words.endswith(b"#"):
        unclosed = words.rstrip(b"#")
        if not unclosed or unclosed[-1:] in (b" ", b"\t"):  # a closing sequence stands after a space
            words = unclosed
    return len(opening.group(1)), words.strip(b" \t")


def _lines(data: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    position = 0
    for line in data.split(b"\n"):
        out.append((position, line))
        position += len(line) + 1
    return out


def markdown_headings(data: bytes) -> list[Heading]:
    """ATX (``## Install``) and setext (a line underlined with ``===`` / ``---``) headings outside fenced code and
    HTML comments."""
    headings: list[Heading] = []
    lines = _lines(data)
    first = 0
    if (front := _FRONT_MATTER.match(data)) is not None:  # YAML front matter's "---" lines are no headings
        first = data.count(b"\n", 0, front.end()) + (0 if front.group().endswith(b"\n") else 1)
    fence: bytes | None = None
    in_comment = False
    previous_blank = True
    for index in range(first, len(lines)):
        start, line = lines[index]
        if fence is not None:
            closing = _FENCE.match(line)
            if closing is not None and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence) \
                    and not line[closing.end():].strip():
                fence = None
            previous_blank = False
            continue
        if in_comment or _COMMENT.match(line) is not None:
            in_comment = b"-->" not in line  # as CommonMark ends the block: `<!-->` is closed on its line
            previous_blank = False
            continue
        if (opening := _FENCE.match(line)) is not None:
            fence = opening.group(1)
            previous_blank = False
            continue
        if len(line) > MAX_HEADING_BYTES:
            previous_blank = False
            continue
        if (atx := atx_heading(line)) is not None:
            headings.append(Heading(start, atx[0], heading_title(atx[1])))
            previous_blank = True
            continue
        underline = _SETEXT.fullmatch(lines[index + 1][1]) if index + 1 < len(lines) else None
        if underline is not None and previous_blank and line.strip() and not _NOT_TITLE.match(line):
            headings.append(Heading(start, 1 if underline.group(1)[:1] == b"=" else 2, heading_title(line)))
        previous_blank = not line.strip()
    return headings


def rst_headings(data: bytes) -> list[Heading]:
    """reStructuredText section titles: a line underlined (and maybe overlined) with punctuation at least as long;
    levels in the order the styles first appear, as docutils assigns them."""
    headings: list[Heading] = []
    styles: list[tuple[bytes, bool]] = []
    lines = _lines(data)
    for index in range(len(lines) - 1):
        start, line = lines[index]
        title = line.rstrip()
        if len(title) > MAX_HEADING_BYTES:
            continue
        under = _RST_UNDERLINE.fullmatch(lines[index + 1][1])
        if under is None or not title or line[:1].isspace() or _RST_UNDERLINE.fullmatch(line) \
                or len(under.group().rstrip()) < len(title.strip()):
            continue
        over = index > 0 and lines[index - 1][1].rstrip() == under.group().rstrip()
        style = (under.group(1), over)
        if style not in styles:
            styles.append(style)
        headings.append(Heading(lines[index - 1][0] if over else start, styles.index(style) + 1,
                                heading_title(title)))
    return headings


def document_title(headings: list[Heading]) -> Heading | None:
    """A document's one top heading, when it opens the document: its title, left out of the names below it."""
    levels = [h.level for h in headings]
    return headings[0] if headings and levels[0] == min(levels) and levels.count(levels[0]) == 1 else None


def sections(data: bytes, headings: list[Heading], title: Heading | None = None,
             trail: list[Heading] | None = None) -> list[tuple[int, int, str]]:
    """``(start, end, name)`` of each section; what precedes the first heading is named after ``trail`` (the
    headings open where ``data`` starts, as in a notebook's earlier cells; updated in place), "" without one."""
    trail = [] if trail is None else trail
    out: list[tuple[int, int, str]] = []
    carried: int | None = None  # where a heading passed on to its sub-section starts
    leads = _leads(data, headings)
    if headings and headings[0].start > 0 and _markup_only(data[:headings[0].start]):
        carried = 0  # an anchor, a label or badges above the first heading belong to its section
    elif not headings or leads[0] > 0:
        out.append((0, leads[0] if headings else len(data), _name(trail, title)))
    for index, heading in enumerate(headings):
        following = headings[index + 1] if index + 1 < len(headings) else None
        while trail and trail[-1].level >= heading.level:
            trail.pop()
        trail.append(heading)
        end = leads[index + 1] if following is not None else len(data)
        under = data[heading.start:end].partition(b"\n")[2]
        if following is not None and following.level > heading.level and not under.strip(b" \t\r\n=-"):
            carried = leads[index] if carried is None else carried
            continue
        start = leads[index] if carried is None else carried
        carried = None
        out.append((start, end, _name(trail, title)))
    return out


def _leads(data: bytes, headings: list[Heading]) -> list[int]:
    """Where each heading's section starts: at the heading, or at the labels right above it that point to it (a
    reST ``.. _install:`` line, an ``<a id="install"></a>`` anchor), which would otherwise end the section before."""
    leads: list[int] = []
    floor = 0
    for heading in headings:
        window = data[max(floor, heading.start - _LABELS_WINDOW):heading.start]
        # A label ends in ":" and an anchor in ">": most headings are passed without a search.
        labels = _TRAILING_LABELS.search(window) if window.rstrip().endswith((b":", b">")) else None
        leads.append(heading.start - (len(window) - labels.start()) if labels is not None else heading.start)
        floor = heading.start + 1
    return leads


def _markup_only(preamble: bytes) -> bool:
    """Whether what precedes a document's (or a notebook cell's) first heading is markup without prose: reST labels,
    comments, directives and their options (``.. _options:``, ``.. currentmodule:: click``, ``:orphan:``), HTML
    (an ``<a id>`` anchor, a centred logo, a comment) and badge or link lines. Alone, such a chunk is noise whose
    file name matched queries (``.. _arguments:`` named ``arguments.rst`` came first for "Arguments")."""
    lines = preamble.split(b"\n")
    return all(not line.strip() or line[:1] in b" \t" or line.lstrip().startswith((b"..", b":", b"<", b"[", b"!["))
               for line in lines) and bool(preamble.strip())


def _name(trail: list[Heading], title: Heading | None) -> str:
    named = [h.title for h in trail if h.title and (h is not title or h is trail[-1])]
    return NAME_SEPARATOR.join(named)[:MAX_NAME_CHARS]


def chunk_sections(path: str, data: bytes, language: str, cutter: Cutter) -> list[Chunk]:
    """``text`` chunks of a Markdown (or, with ``language`` ``restructuredtext``, an reST) file, one section each
    (long ones in windows), named after their headings."""
    headings = rst_headings(data) if language == "restructuredtext" else markdown_headings(data)
    return chunk_found(path, data, language, cutter, sections(data, headings, document_title(headings)))


def chunk_found(path: str, data: bytes, language: str, cutter: Cutter,
                found: list[tuple[int, int, str]]) -> list[Chunk]:
    """``text`` windows over the sections ``found`` (:func:`sections`), each named after its section."""
    starts = [start for start, _, _ in found]
    chunks: list[Chunk] = []
    for window in cutter.windows(path, data, language, [(start, end) for start, end, _ in found], TEXT):
        # A window lies within one section; trimming may move its start past the section's, never before.
        name = found[bisect_right(starts, window.start_byte) - 1][2]
        chunks.append(dataclasses.replace(window, name=name) if name else window)
    return chunks
