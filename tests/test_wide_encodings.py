"""Source files in UTF-16 or UTF-32 with a byte-order mark (Windows PowerShell 5's scripts, older SQL Server
Management Studio's queries) are indexed as the text they are: they were skipped as binary."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from codeneedle.indexer.chunker import chunk_source
from codeneedle.indexer.search import SearchResult
from codeneedle.indexer.walker import BINARY, SECRET, SourceFile, read_source, sniff_binary
from codeneedle.server.results import result_range
from tests.conftest import run_needle

SCRIPT = (
    "<#\r\n.SYNOPSIS\r\nFetches the weather forecast for a city, in °C.\r\n#>\r\n"
    "function Get-Weather {\r\n    param([string]$City)\r\n    Invoke-RestMethod \"https://wttr.in/$City\"\r\n}\r\n"
)
PYTHON = 'def größe(path):\n    """Size of a file in bytes 😀."""\n    return len(open(path, "rb").read())\n'
WIDE = [("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE), ("utf-32-le", codecs.BOM_UTF32_LE)]


@pytest.mark.parametrize(("codec", "bom"), WIDE)
def test_a_wide_file_is_chunked_as_its_text_with_byte_ranges_in_its_own_bytes(codec, bom):
    data = bom + PYTHON.encode(codec)
    (chunk,) = chunk_source("size.py", data, "python")
    assert chunk.name == "größe" and chunk.doc.startswith("Size of a file")
    assert data[chunk.start_byte : chunk.end_byte].decode(codec) == PYTHON.rstrip("\n")
    assert (chunk.start_line, chunk.end_line) == (1, 3)


def test_only_wide_text_with_its_byte_order_mark_is_text():
    text = "function f {}\n"
    assert not sniff_binary(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert sniff_binary(text.encode("utf-16-le"))  # no mark: as git reads it, binary
    assert sniff_binary(codecs.BOM_UTF16_LE + b"\x00\xd8\x00")  # a lone surrogate, odd length: no text
    assert sniff_binary(codecs.BOM_UTF16_LE + b"PK\x03\x04\x00\x00")  # a mark then no text that decodes


def test_a_private_key_in_utf16_is_never_read_into_the_index(tmp_path):
    key = tmp_path / "deploy.pem"
    key.write_bytes(codecs.BOM_UTF16_LE + "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n".encode("utf-16-le"))
    assert read_source(SourceFile("deploy.pem", key, key.stat().st_size, 0, str(tmp_path))) == SECRET
    other = tmp_path / "blob.bin"
    other.write_bytes(b"\x00\x01\x02" * 10)
    assert read_source(SourceFile("blob.bin", other, other.stat().st_size, 0, str(tmp_path))) == BINARY


@pytest.mark.slow
def test_a_utf16_powershell_script_is_found_and_shown_as_text(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "Get-Weather.ps1").write_bytes(codecs.BOM_UTF16_LE + SCRIPT.encode("utf-16-le"))
    (repo / "util.py").write_text("def add(a, b):\n    return a + b\n")
    proc = run_needle("search", "weather forecast for a city", str(repo), "--json", "-k", "2")
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)["results"]
    assert found[0]["name"] == "Get-Weather" and found[0]["path"] == "Get-Weather.ps1"
    assert "Invoke-RestMethod" in found[0]["snippet"]
    lines = run_needle("search", "weather forecast for a city", str(repo), "-k", "1", "-n", "2")
    assert "function Get-Weather {" in lines.stdout and "param([string]$City)" in lines.stdout, lines.stdout
    # The editor's range ends at the end of the last line, counted in its text, not in the file's bytes.
    hit = SearchResult("Get-Weather.ps1", 5, 8, "Get-Weather", "function", "powershell", 0.7, "")
    assert result_range(repo, hit, "utf-16")["end"] == {"line": 7, "character": 1}
    title = SearchResult("Get-Weather.ps1", 3, 3, "doc", "text", "powershell", 0.7, "")
    assert result_range(repo, title, "utf-16")["end"] == {"line": 2, "character": 47}
