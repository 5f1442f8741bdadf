"""`needle mcp` driven by the MCP SDK's own stdio client, the way Claude Code or Cursor would start it."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from codeneedle.indexer.lock import WriterLock
from tests.conftest import NEEDLE, copy_fixture

mcp = pytest.importorskip("mcp")
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _params(root: Path, cwd: Path | None = None, **env: str) -> StdioServerParameters:
    # The SDK passes only a safe subset of the environment: hand on what the encoder needs.
    keep = {k: v for k, v in os.environ.items() if k.startswith(("HF_", "TRANSFORMERS_", "TORCH", "OMP_", "NEEDLE_"))}
    return StdioServerParameters(command=str(NEEDLE), args=["mcp"], cwd=str(cwd or root),
                                 env={**keep, "NEEDLE_ROOT": str(root), **env})


@contextlib.asynccontextmanager
async def mcp_session(params: StdioServerParameters, log: Path, **session: Any):
    """A real `needle mcp` on stdio through the SDK's client, initialized; the server's stderr goes to ``log``."""
    with open(log, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, **session) as client:
                await client.initialize()
                yield client


def _payload(result) -> dict[str, Any]:
    """The tool's JSON answer (structured content when sent, else the text block)."""
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def _text(result) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def test_mcp_tools_end_to_end(tmp_path: Path) -> None:
    repo = copy_fixture("minirepo", tmp_path / "minirepo")
    (repo / ".git").mkdir()  # a git work tree: NEEDLE_ROOT below points into a subfolder of it
    stray: list[Exception] = []

    async def on_message(message) -> None:
        if isinstance(message, Exception):  # a line on stdout that is not MCP
            stray.append(message)

    with open(tmp_path / "server.log", "w") as errlog:
        async with stdio_client(_params(repo / "src" / "config", cwd=tmp_path), errlog=errlog) as (read, write):
            async with ClientSession(read, write, message_handler=on_message) as session:
                init = await session.initialize()
                assert init.server_info.name == "needle"

                tools = {t.name: t for t in (await session.list_tools()).tools}
                assert set(tools) == {"search", "similar", "status"}
                assert tools["search"].input_schema["required"] == ["query"]
                assert set(tools["search"].input_schema["properties"]) == {
                    "query", "k", "lang", "glob", "path", "exclude_glob", "kind"}
                assert set(tools["similar"].input_schema["required"]) == {"path", "line"}
                # The formats `lang` takes are named to an agent as to `needle search --help`.
                assert "'markdown'" in tools["search"].input_schema["properties"]["lang"]["description"]

                # First use builds the index, then answers; the root is the work tree, not the subfolder.
                found = _payload(await session.call_tool("search", {"query": "parse a config file", "k": 5}))
                assert found["state"] == "ready"
                assert found["root"] == str(repo.resolve())
                assert found["good_match"] is True and 0.35 <= found["results"][0]["score"] < 0.99
                top = found["results"][0]
                assert (top["path"], top["name"], top["start_line"]) == ("src/config/loader.py", "load_json_config", 9)
                assert top["snippet"].startswith("def load_json_config(path):")
                assert len(found["results"]) <= 5

                # Filters pass through.
                go = _payload(await session.call_tool("search", {"query": "retry with backoff", "lang": "go"}))
                assert go["results"] and {r["language"] for r in go["results"]} == {"go"}
                meta = await session.call_tool("search", {"query": "config", "k": 1, "_meta": {"progressToken": 1}})
                assert not meta.is_error, _text(meta)  # a client's own "_" keys pass
                classes = _payload(await session.call_tool("search", {"query": "config", "kind": "class"}))
                assert classes["results"] and {r["kind"] for r in classes["results"]} == {"class"}
                globbed = _payload(await session.call_tool("search", {"query": "config", "glob": "web/**"}))
                assert all(r["path"].startswith("web/") for r in globbed["results"])
                for exclusion in ({"glob": "!web/**"}, {"exclude_glob": ["web/**"]}):
                    kept = _payload(await session.call_tool("search", {"query": "format money", **exclusion}))
                    assert kept["results"] and not any(r["path"].startswith("web/") for r in kept["results"])
                nonsense = _payload(await session.call_tool("search", {"query": "zzqx blorf"}))
                assert nonsense["good_match"] is False and "no good match" in nonsense["note"]

                status = _payload(await session.call_tool("status", {}))
                assert status["state"] == "ready"
                assert status["root"] == str(repo.resolve())
                assert status["files"] >= 6 and status["chunks"] > status["files"]
                assert status["languages"]["python"] == 1
                assert status["last_update"]

                similar = _payload(await session.call_tool("similar", {"path": "src/config/loader.py", "line": 10}))
                assert similar["results"]
                assert all(not (r["path"] == "src/config/loader.py" and r["start_line"] == 9)
                           for r in similar["results"])

                # An edit is seen by the next call (stat-only refresh), no restart needed.
                (repo / "src/config/extra.py").write_text(
                    "def decode_yaml_manifest(text):\n    \"\"\"Turn a YAML manifest into a dict.\"\"\"\n"
                    "    return {}\n")
                fresh = _payload(await session.call_tool("search", {"query": "decode_yaml_manifest", "k": 3}))
                assert fresh["results"][0]["name"] == "decode_yaml_manifest"

                # Another process (an editor's language server) owns the index: answers still come, from it.
                lock = WriterLock(repo / ".needle")
                lock.acquire()
                try:
                    shared = _payload(await session.call_tool("search", {"query": "parse a config file", "k": 3}))
                finally:
                    lock.release()
                assert shared["results"][0]["name"] == "load_json_config"
                assert "another needle process" in shared["note"]

                # A glob that matches no indexed file says so, rather than leave an empty list to explain itself.
                none = _payload(await session.call_tool("search", {"query": "parse a config file", "glob": "srcs/**"}))
                assert none["results"] == [] and "no indexed file matches the glob 'srcs/**'" in none["note"], none

                # Bad arguments are tool errors the model can read, and the server keeps serving.
                for name, args, expect in [
                    ("search", {}, "query"),
                    ("search", {"query": 42}, "query"),
                    ("search", {"query": "x", "k": 0}, "k must be between 1 and 100, got 0"),
                    ("search", {"query": "x", "lang": "pyhton"}, "unknown language 'pyhton'; known: python"),
                    ("search", {"query": "x", "lang": ""}, "lang '' names no language"),
                    ("search", {"query": "x", "kind": "funtion"}, "unknown kind 'funtion'"),
                    ("search", {"query": "x", "exclude": "tests/**"},
                     "unknown argument 'exclude'; it takes query, k, lang, glob, path, exclude_glob, kind"),
                    ("status", {"path": "/etc"}, "unknown argument 'path'; it takes no arguments"),
                    ("search", {"query": "   "}, "empty"),
                    ("search", {"query": "x", "path": str(tmp_path / "nope")}, "not a folder this server serves"),
                    ("similar", {"path": "src/config/loader.py"}, "line"),
                    ("similar", {"path": "/etc/passwd", "line": 1}, "outside"),
                    ("similar", {"path": "README.md", "line": 9999}, "no indexed code"),
                ]:
                    bad = await session.call_tool(name, args)
                    assert bad.is_error, (name, args)
                    assert expect in _text(bad), (name, args, _text(bad))
                    if args.get("k") == 0:  # a plain sentence, not pydantic's validation dump
                        assert "pydantic" not in _text(bad) and "validation error" not in _text(bad), _text(bad)
                assert _payload(await session.call_tool("status", {}))["state"] == "ready"

    assert not stray, stray
    # The index lives in the repository, not in the server's working directory.
    assert (repo / ".needle" / "index.db").exists()
    assert not (tmp_path / ".needle").exists()


async def test_mcp_missing_root_is_a_tool_error(tmp_path: Path) -> None:
    with open(tmp_path / "server.log", "w") as errlog:
        async with stdio_client(_params(tmp_path / "missing", cwd=tmp_path), errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("status", {})
                assert result.is_error
                assert "does not exist" in _text(result)
