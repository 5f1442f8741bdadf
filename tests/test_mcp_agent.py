"""`needle mcp` as a coding agent meets it: what tools/list promises, progress while an index is built, notes and
errors it can act on, the client's roots, and the client going away mid-call."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from codeneedle.indexer.index import Index
from tests.conftest import copy_fixture

mcp = pytest.importorskip("mcp")

from tests.test_mcp import _params, _payload, _text, mcp_session  # noqa: E402
from tests.test_mcp_hostile import _initialize, _raw_server  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


async def test_a_call_that_waits_on_an_index_build_reports_progress_to_its_progress_token(tmp_path: Path) -> None:
    repo = copy_fixture("minirepo", tmp_path / "repo")
    heard: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        heard.append((progress, total, message))

    async with mcp_session(_params(repo, cwd=tmp_path), tmp_path / "server.log") as session:
        # The first call builds the index: the client hears how far it is, not a silent wait.
        first = await session.call_tool("search", {"query": "parse a config file", "k": 3},
                                        progress_callback=on_progress)
        assert _payload(first)["results"]
        assert heard, "no notifications/progress for a call that built the index"
        assert all(total == 100 for _, total, _ in heard), heard
        values = [value for value, _, _ in heard]
        assert values == sorted(set(values)), heard  # MCP: progress increases with each notification
        assert all(message and message.startswith(f"indexing {repo}: ") for _, _, message in heard), heard

        # Nothing changed since: the stat-only refresh before the next call is not reported as indexing.
        heard.clear()
        again = await session.call_tool("search", {"query": "retry with backoff", "k": 3},
                                        progress_callback=on_progress)
        assert _payload(again)["results"] and heard == [], heard

        # An edit is embedded before the answer, and said so.
        (repo / "src" / "extra.py").write_text("def decode_yaml_manifest(text):\n    return {}\n")
        fresh = await session.call_tool("search", {"query": "decode_yaml_manifest", "k": 1},
                                        progress_callback=on_progress)
        assert _payload(fresh)["results"][0]["name"] == "decode_yaml_manifest"
        assert heard and all(total == 100 for _, total, _ in heard), heard


def _generated_repo(root: Path, files: int = 40, functions: int = 60) -> Path:
    """A repository big enough that building its index takes a while: ``files * functions`` small functions."""
    (root / ".git").mkdir(parents=True)
    for f in range(files):
        body = "".join(f"def step_{f}_{n}(value):\n    \"\"\"Stage {n} of pipeline {f}.\"\"\"\n"
                       f"    return value * {n} + {f}\n\n\n" for n in range(functions))
        (root / f"stage_{f}.py").write_text(body)
    return root


def test_closing_stdin_while_a_call_waits_on_the_first_build_stops_the_server_and_the_build(tmp_path: Path) -> None:
    """The client has gone: the server cancels the build it started and exits, rather than finish indexing for
    no one (and hold the encoder's CPU) until the call's wait runs out."""
    repo = _generated_repo(tmp_path / "repo")
    proc = _raw_server(repo, NEEDLE_MCP_WAIT="600")
    try:
        _initialize(proc)
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "search", "arguments": {"query": "pipeline stage"}, "_meta": {"progressToken": "build"}}}
        proc.stdin.write(json.dumps(call).encode() + b"\n")
        proc.stdin.flush()
        while True:  # embedding has begun
            line = json.loads(proc.stdout.readline())
            assert line.get("method") == "notifications/progress", line
            if "embedding" in line["params"]["message"]:
                break
        proc.stdin.close()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    index = Index.open(repo, create=False)
    try:
        done = index.completeness()
    finally:
        index.close()
    assert done.partial and done.chunks_embedded < done.chunks_total, done  # stopped, not finished for no one


async def test_a_search_that_finds_nothing_says_which_filters_left_nothing(tmp_path: Path) -> None:
    """An empty list alone reads as "no such code exists"; the note names what narrowed the search to nothing."""
    repo = copy_fixture("minirepo", tmp_path / "repo")
    async with mcp_session(_params(repo, cwd=tmp_path), tmp_path / "server.log") as session:
        for arguments, named in [
            ({"lang": "rust"}, "lang='rust'"),  # a known language the repository has none of
            ({"lang": "go", "kind": "text"}, "lang='go', kind='text'"),
            ({"path": "README.md", "kind": ["function"]}, "kind=['function'], path='README.md'"),
        ]:
            answer = _payload(await session.call_tool("search", {"query": "parse a config file",
                                                                 **arguments}))
            assert answer["results"] == [] and answer["good_match"] is False, answer
            assert answer["note"].startswith(f"no results: no indexed code fits {named}; "), answer


async def test_similar_at_a_line_that_holds_no_code_says_what_to_ask_instead(tmp_path: Path) -> None:
    """A blank line above a definition, a file the index skipped, a folder: each error says what to do next."""
    repo = copy_fixture("minirepo", tmp_path / "repo")
    (repo / "web" / "vendor.js").write_text("var a=1;" + "function f(b){return b+1};" * 2000 + "\n")
    async with mcp_session(_params(repo, cwd=tmp_path), tmp_path / "server.log") as session:
        for arguments, text in [
            ({"path": "src/config/loader.py", "line": 8}, "similar: no indexed code at src/config/loader.py:8; "
             "the nearest indexed code is load_json_config at lines 9-12"),
            ({"path": "web/vendor.js", "line": 1}, "similar: no indexed code at web/vendor.js:1: "
             "web/vendor.js is not indexed (skipped: minified)"),
            ({"path": "src/config", "line": 1}, "similar: no indexed code at src/config:1: that is a folder, "
             "not a file"),
            ({"path": "src/nothere.py", "line": 1}, "similar: no indexed code at src/nothere.py:1: no such "
             f"file in {repo}"),
        ]:
            answer = await session.call_tool("similar", arguments)
            assert answer.is_error and _text(answer) == text, (arguments, _text(answer))
        # The line it names answers.
        assert _payload(await session.call_tool("similar", {"path": "src/config/loader.py", "line": 9}))


async def test_every_tool_is_listed_as_reading_only_and_staying_on_the_machine(tmp_path: Path) -> None:
    """MCP's defaults for a tool without annotations are "may modify and destroy, reaches the open world": clients
    then ask before each call and run none side by side. Needle's tools only read (their one write is Needle's own
    index, a cache) and nothing leaves the machine."""
    repo = copy_fixture("minirepo", tmp_path / "repo")
    async with mcp_session(_params(repo, cwd=tmp_path), tmp_path / "server.log") as session:
        tools = (await session.list_tools()).tools
    assert {t.name: t.title for t in tools} == {"search": "Search code", "similar": "Find similar code",
                                                 "status": "Index status"}
    for tool in tools:
        hints = tool.annotations.model_dump(by_alias=True, exclude_none=True)
        assert hints == {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True,
                         "openWorldHint": False}, (tool.name, hints)
    assert not (repo / ".needle").exists()  # listing tools indexes nothing


async def test_a_server_given_no_root_serves_the_folders_the_client_has_open(tmp_path: Path) -> None:
    """Started in some other folder (clients start servers in the home folder or at /), with no NEEDLE_ROOT: the
    client's roots (roots/list) say which repositories the user has open: the first is searched, the others
    too as extra roots, and the working folder is left alone."""
    from mcp import types

    repo = copy_fixture("minirepo", tmp_path / "repo")
    (repo / ".git").mkdir()
    other = tmp_path / "other"
    (other / ".git").mkdir(parents=True)
    (other / "billing.py").write_text("def charge_credit_card(amount):\n    return amount\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "stray.py").write_text("def stray_function():\n    return 'not a root'\n")
    asked, second_call_sent = [], anyio.Event()

    async def list_roots(context) -> types.ListRootsResult:
        asked.append(True)
        await second_call_sent.wait()  # a call that comes meanwhile waits for the roots too
        return types.ListRootsResult(roots=[types.Root(uri=repo.as_uri(), name="repo"),
                                            types.Root(uri=other.as_uri(), name="other")])

    params = _params(repo, cwd=elsewhere)
    params.env.pop("NEEDLE_ROOT")
    async with mcp_session(params, tmp_path / "server.log", list_roots_callback=list_roots) as session:
        answers = {}

        async def call(name: str, arguments: dict) -> None:
            answers[name] = _payload(await session.call_tool(name, arguments))

        async with anyio.create_task_group() as calls:
            calls.start_soon(call, "search", {"query": "parse a config file", "k": 3})
            await anyio.sleep(0.2)
            calls.start_soon(call, "status", {})
            await anyio.sleep(0.2)
            second_call_sent.set()
        found = answers["search"]
        assert found["root"] == str(repo.resolve()), found
        assert answers["status"]["root"] == str(repo.resolve()), answers["status"]
        assert found["results"][0]["name"] == "load_json_config"
        billing = _payload(await session.call_tool("search", {"query": "charge a credit card", "k": 1}))
        assert billing["results"][0]["name"] == "charge_credit_card", billing
        status = _payload(await session.call_tool("status", {}))
        assert [r["root"] for r in status["repos"]] == [str(repo.resolve()), str(other.resolve())]
        outside = await session.call_tool("search", {"query": "stray", "path": str(elsewhere)})
        assert outside.is_error and "is not a folder this server serves" in _text(outside)
    assert asked == [True]  # asked once, before the first call
    assert not (elsewhere / ".needle").exists()


async def test_a_server_started_in_the_home_folder_tells_the_agent_to_name_its_project(tmp_path: Path) -> None:
    """No root named, no roots offered, the working folder is the home folder (indexed only when asked): the
    error says what an agent can do, and giving that path works."""
    home = tmp_path / "home"
    project = copy_fixture("minirepo", home / "project")
    (project / ".git").mkdir()
    params = _params(project, cwd=home, HOME=str(home))
    params.env.pop("NEEDLE_ROOT")
    async with mcp_session(params, tmp_path / "server.log") as session:
        refused = await session.call_tool("search", {"query": "parse a config file"})
        assert refused.is_error, _text(refused)
        assert _text(refused).startswith(f"search: {home} is your home folder, which is indexed only when "
                                         "asked"), _text(refused)
        assert _text(refused).endswith("Here: give `path` the project's folder (absolute), or set "
                                       "NEEDLE_ROOT to it in this server's configuration"), _text(refused)
        found = _payload(await session.call_tool("search", {"query": "parse a config file",
                                                            "path": str(project)}))
        assert found["root"] == str(project.resolve()) and found["results"][0]["name"] == "load_json_config"
    assert not (home / ".needle").exists()


async def test_similar_takes_an_extra_root_s_result_as_search_gave_it(tmp_path: Path) -> None:
    """A search over the root and an extra root gives each result's path relative to its `repo`: that path and
    line, passed on to `similar` as they are, name that file (not a missing one in the root)."""
    repo = copy_fixture("minirepo", tmp_path / "repo")
    other = tmp_path / "other"
    (other / ".git").mkdir(parents=True)
    (other / "billing.py").write_text(
        "def charge_credit_card(amount):\n    \"\"\"Charge the customer's card.\"\"\"\n    return amount\n\n\n"
        "def refund_payment(amount):\n    \"\"\"Give the customer's money back.\"\"\"\n    return -amount\n")
    async with mcp_session(_params(repo, cwd=tmp_path, NEEDLE_EXTRA_ROOTS=str(other)), tmp_path / "server.log") as session:
        top = _payload(await session.call_tool("search", {"query": "charge a credit card", "k": 1}))
        top = top["results"][0]
        assert (top["repo"], top["path"], top["name"]) == (str(other.resolve()), "billing.py",
                                                           "charge_credit_card"), top
        like = _payload(await session.call_tool("similar", {"path": top["path"],
                                                            "line": top["start_line"]}))
        assert like["root"] == str(other.resolve()) and like["path"] == "billing.py", like
        assert [r["name"] for r in like["results"]] == ["refund_payment"], like
        # A path the root has is still the root's.
        mine = _payload(await session.call_tool("similar", {"path": "src/config/loader.py", "line": 9}))
        assert mine["root"] == str(repo.resolve()), mine


async def test_the_input_schemas_accept_exactly_what_the_tools_accept(tmp_path: Path) -> None:
    """Each tool's input schema is valid JSON Schema and states the bounds the tool checks: a call the schema
    accepts is served, one it refuses is refused by the tool too (a model that reads the schema gets it right
    the first time)."""
    import jsonschema

    repo = copy_fixture("minirepo", tmp_path / "repo")
    calls = [  # (tool, arguments, the schema and the tool accept it)
        ("search", {"query": "config", "k": 100}, True),
        ("search", {"query": "config", "k": 101}, False),
        ("search", {"query": "config", "k": 0}, False),
        ("search", {"query": "x" * 4096, "k": 1}, True),
        ("search", {"query": "x" * 4097}, False),
        ("search", {"query": ""}, False),
        ("similar", {"path": "src/config/loader.py", "line": 1, "k": 1}, True),
        ("similar", {"path": "src/config/loader.py", "line": 0}, False),
        ("similar", {"path": "src/config/loader.py", "line": 9, "cell": 0}, False),
        ("similar", {"path": "src/config/loader.py", "line": 9, "cell": None}, True),
        ("status", {}, True),
    ]
    async with mcp_session(_params(repo, cwd=tmp_path), tmp_path / "server.log") as session:
        schemas = {t.name: t.input_schema for t in (await session.list_tools()).tools}
        for schema in schemas.values():
            jsonschema.Draft202012Validator.check_schema(schema)
            assert schema["type"] == "object"
        for tool, arguments, valid in calls:
            fits = jsonschema.Draft202012Validator(schemas[tool]).is_valid(arguments)
            served = not (await session.call_tool(tool, arguments)).is_error
            assert (fits, served) == (valid, valid), (tool, {k: str(v)[:20] for k, v in arguments.items()})


async def test_the_search_description_says_how_globs_match_and_they_match_so(tmp_path: Path) -> None:
    """Globs are read as in .gitignore, which a model would not guess: the description says so with examples,
    and each example does what it says. It also says results come best first though scores need not decrease."""
    repo = copy_fixture("minirepo", tmp_path / "repo")
    (repo / "src" / "settings.py").write_text("def read_settings_file(path):\n    return open(path).read()\n")
    async with mcp_session(_params(repo, cwd=tmp_path), tmp_path / "server.log") as session:
        search = {t.name: t for t in (await session.list_tools()).tools}["search"]
        assert "best first" in search.description and "scores need not decrease" in search.description
        said = search.input_schema["properties"]["glob"]["description"]
        for glob, paths in [("*.py", {"src/settings.py", "src/config/loader.py"}),
                            ("src/*.py", {"src/settings.py"}),
                            ("src/**/*.py", {"src/settings.py", "src/config/loader.py"})]:
            assert f"'{glob}'" in said, (glob, said)
            answer = _payload(await session.call_tool("search", {"query": "read a settings file", "k": 50,
                                                                 "glob": glob}))
            assert {r["path"] for r in answer["results"]} == paths, (glob, answer["results"])


async def test_similar_while_the_first_build_runs_says_the_file_may_not_be_reached_yet(tmp_path: Path) -> None:
    """With NEEDLE_MCP_WAIT=0 calls answer at once over what is indexed: a file the build has not read yet is not
    "ignored", it is not indexed *yet*, and the error says so with how far the index is."""
    repo = _generated_repo(tmp_path / "repo")
    async with mcp_session(_params(repo, cwd=tmp_path, NEEDLE_MCP_WAIT="0"), tmp_path / "server.log") as session:
        first = _payload(await session.call_tool("search", {"query": "pipeline stage", "k": 1}))
        assert first["state"] == "indexing" and first["partial"] is True, first
        # The answer says it is partial and when to ask again (an agent would otherwise take it as all).
        assert first["note"].startswith("indexing is still running; results cover what is indexed so far: "
                                        "ask again "), first["note"]
        assert " for all of it" in first["note"], first["note"]
        early = await session.call_tool("similar", {"path": "stage_39.py", "line": 1})
        if early.is_error:  # else the build had already read it: nothing to say
            assert _text(early) == ("similar: no indexed code at stage_39.py:1: stage_39.py is not indexed "
                                    "yet: indexing is still running; ask again shortly"), _text(early)


async def test_status_on_a_repository_being_indexed_says_how_far_it_is_without_waiting_for_the_end(
        tmp_path: Path) -> None:
    """`status` is how an agent asks whether the index is ready: on a cold repository it answers while the first
    build runs (state indexing, with progress), instead of answering "ready" once the build is over."""
    repo = _generated_repo(tmp_path / "repo", files=60, functions=80)
    async with mcp_session(_params(repo, cwd=tmp_path, NEEDLE_MCP_WAIT="600"), tmp_path / "server.log") as session:
        status = _payload(await session.call_tool("status", {}))
        assert status["state"] == "indexing" and status["partial"] is True, status
        assert "ask again" in status["note"], status
