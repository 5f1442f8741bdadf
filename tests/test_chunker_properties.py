"""Properties of the chunker that hold for any input bytes in any language (hypothesis)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeneedle.indexer.chunker import MAX_TEXT_BYTES, chunk_source
from codeneedle.indexer.chunks import BLOCK, CLASS, FUNCTION, METHOD, TEXT, Chunk
from codeneedle.indexer.languages import SUPPORTED_LANGUAGES, language_for_path

POLYGLOT = Path(__file__).parent / "fixtures" / "polyglot"
FIXTURES = {p.name: p.read_bytes() for p in sorted(POLYGLOT.iterdir())}
LANGUAGES = st.sampled_from([*SUPPORTED_LANGUAGES, None])
KINDS = {FUNCTION, METHOD, CLASS, BLOCK, TEXT}

# Fragments that open and close the structures the queries look for, so random sequences of them
# reach the definition-handling code far more often than random bytes do.
TOKENS = [
    "def ", "class ", "fn ", "func ", "impl ", "struct ", "module ", "namespace ", "function ",
    "interface ", "enum ", "trait ", "end", "self", "Foo", "bar", "T", "::", ".", ",", ";", ":",
    "(", ")", "{", "}", "[", "]", "<", ">", "=", "=>", "->", "@", "#[", "#", "//", "///", "/*", "*/",
    '"""', "'", '"', "\n", "\n    ", "\t", " ", "\r\n", "é", "\x00", "\\",
    # SQL, HCL, Solidity, F#, PowerShell, MATLAB, Fortran
    "CREATE FUNCTION ", "CREATE TABLE ", "--", "resource ", '"x" ', "contract ", "let ", "member ", "type ",
    "<#", "#>", "%", "!", "subroutine ", "end subroutine", "classdef ",
]  # fmt: skip


class _Failures(logging.Handler):
    """Collects warnings: the chunker logs one whenever it had to fall back after an internal error."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def check(data: bytes, language: str | None) -> list[Chunk]:
    failures = _Failures()
    log = logging.getLogger("codeneedle.indexer.chunker")
    log.addHandler(failures)
    try:
        chunks = chunk_source("pkg/sample.src", data, language)
    finally:
        log.removeHandler(failures)
    assert not failures.records, failures.records[0].getMessage()

    # A lone CR ends a line like LF does (classic Mac files); chunk text shows it as a line break.
    lines = re.sub(rb"\r(?!\n)", b"\n", data)
    for c in chunks:
        assert c.kind in KINDS
        assert c.language == (language or "text")
        assert c.name
        assert 0 <= c.start_byte <= c.end_byte <= len(data)
        assert c.start_line <= c.end_line
        assert lines[: c.start_byte].count(b"\n") + 1 == c.start_line
        assert lines[: max(c.start_byte, c.end_byte - 1)].count(b"\n") + 1 == c.end_line
        if c.kind != CLASS:
            whole = lines[c.start_byte : c.end_byte].decode("utf-8", "replace")
            if c.end_byte - c.start_byte <= MAX_TEXT_BYTES:
                assert c.text == whole
            else:
                assert whole.startswith(c.text)
    # Classes overlap their methods; everything else covers each byte at most once.
    spans = sorted((c.start_byte, c.end_byte) for c in chunks if c.kind != CLASS)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start
    assert [c.start_byte for c in chunks] == sorted(c.start_byte for c in chunks)
    return chunks


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000), language=LANGUAGES)
def test_any_bytes_in_any_language(data: bytes, language: str | None) -> None:
    check(data, language)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens=st.lists(st.sampled_from(TOKENS), max_size=300), language=LANGUAGES)
def test_any_token_soup_in_any_language(tokens: list[str], language: str | None) -> None:
    check("".join(tokens).encode("utf-8"), language)


@st.composite
def mutated_fixture(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A fixture file with a few random cuts, insertions and duplications, in its own language."""
    name = draw(st.sampled_from(sorted(FIXTURES)))
    data = FIXTURES[name]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data)))
        j = draw(st.integers(i, min(len(data), i + 200)))
        op = draw(st.sampled_from(["cut", "insert", "duplicate", "truncate"]))
        if op == "cut":
            data = data[:i] + data[j:]
        elif op == "insert":
            data = (
                data[:i]
                + draw(st.binary(max_size=20) | st.sampled_from([t.encode() for t in TOKENS]))
                + data[i:]
            )
        elif op == "duplicate":
            data = data[:j] + data[i:j] + data[j:]
        else:
            data = data[:i]
    return data, language_for_path(name)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=mutated_fixture())
def test_mutated_fixtures(sample: tuple[bytes, str | None]) -> None:
    check(*sample)


def test_unmodified_fixtures() -> None:
    for name, data in FIXTURES.items():
        assert check(data, language_for_path(name))


def _uncovered_words(data: bytes, chunks: list[Chunk]) -> bytes:
    """The word characters of ``data`` that no chunk (nor a chunk's doc comment) holds."""
    held = bytearray(len(data))
    for c in chunks:
        for start, end in ((c.start_byte, c.end_byte), (c.doc_start_byte, c.doc_end_byte)):
            held[start:end] = b"\x01" * (end - start)
    return bytes(b for b, h in zip(data, held, strict=True) if not h and (chr(b).isalnum() or b == ord("_")))


def test_an_unclosed_bracket_anywhere_loses_no_code_and_doubles_none() -> None:
    """A file half-typed when the editor saved it: an opening bracket or quote at any of 40 places in each
    fixture. Every word stays in some chunk (the recovery re-chunks whole chunks it touches), none twice."""
    for name, data in FIXTURES.items():
        language = language_for_path(name)
        for n in range(40):
            at = n * len(data) // 40
            for opener in (b"(", b"[", b'"'):
                broken = data[:at] + opener + data[at:]
                chunks = check(broken, language)
                assert not _uncovered_words(broken, chunks), (name, at, opener)
