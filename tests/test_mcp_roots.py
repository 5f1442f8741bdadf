"""`needle mcp` follows the folders the client has open: a workspace folder added or removed, another project opened
in the same window (notifications/roots/list_changed), driven by the MCP SDK's own client."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from tests.test_mcp import _params, _payload, _text, mcp_session

mcp = pytest.importorskip("mcp")
from mcp import types  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ALPHA = {"inventory.py": 'def reserve_stock(item, quantity):\n    """Hold items in the warehouse for an order."""\n'
                         "    return {item: quantity}\n",
         "shipping.py": 'def shipping_cost(weight):\n    """Postage for a parcel of this weight."""\n'
                        "    return 2.5 * weight\n"}
BETA = {"billing.py": 'def charge_credit_card(amount):\n    """Charge the customer\'s card."""\n    return amount\n\n\n'
                      'def refund_payment(amount):\n    """Give the customer\'s money back."""\n    return -amount\n'}
GAMMA = {"dates.py": 'def next_business_day(day):\n    """The next weekday after day."""\n    return day + 1\n'}


def _repo(root: Path, files: dict[str, str]) -> Path:
    """A tiny git work tree holding ``files``."""
    (root / ".git").mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root.resolve()


def _roots_callback(folders: list[Path], asked: list[bool], failing: list[bool] | None = None):
    """A client's roots/list answer: the folders it has open now (``folders``, changed by the test), or an error
    while ``failing`` holds a True."""

    async def list_roots(context) -> types.ListRootsResult | types.ErrorData:
        asked.append(True)
        if failing:
            return types.ErrorData(code=types.INTERNAL_ERROR, message="the workspace is being reloaded")
        return types.ListRootsResult(roots=[types.Root(uri=f.as_uri(), name=f.name) for f in folders])

    return list_roots


async def _roots_changed(session) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK marks roots deprecated from protocol 2026-07-28 on
        await session.send_roots_list_changed()


def _server_pid() -> int:
    """The `needle mcp` process this test started (the SDK's stdio client spawns it as a child)."""
    children = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == os.getpid()
                and b"mcp" in (p / "cmdline").read_bytes()]
    assert len(children) == 1, children
    return int(children[0].name)


def _ppid(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _files_open_under(pid: int, folder: Path) -> list[str]:
    """Files of ``folder`` the process holds open or mapped (its index's database, WAL, vector file), once each
    however often, but for the one read-only descriptor of each database file a process keeps for good: closing
    it would drop every SQLite lock the process holds on the file (dbheader.py)."""
    inside = str(folder) + os.sep
    held = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            held.append(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile
    held += [line.split(maxsplit=5)[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
             if len(line.split(maxsplit=5)) == 6]
    found = sorted(path for path in held if path.startswith(inside))
    for path in {p for p in found if p.endswith(".db")}:
        found.remove(path)  # the header descriptor
    return sorted(set(found))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads the server's open files from /proc")
async def test_after_the_client_changes_its_folders_the_new_one_is_searched_and_the_old_one_released(
        tmp_path: Path) -> None:
    """The user opens another project in the same window: the client notifies, the next call asks roots/list again
    and searches the new folder; a path under the folder no longer open is refused like any other, and the server
    no longer holds the old folder's index open."""
    alpha, beta = _repo(tmp_path / "alpha", ALPHA), _repo(tmp_path / "beta", BETA)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folders, asked = [alpha], []
    params = _params(alpha, cwd=elsewhere)
    params.env.pop("NEEDLE_ROOT")
    async with mcp_session(params, tmp_path / "server.log",
                           list_roots_callback=_roots_callback(folders, asked)) as session:
        before = _payload(await session.call_tool("search", {"query": "hold stock in the warehouse", "k": 1}))
        assert (before["root"], before["results"][0]["name"]) == (str(alpha), "reserve_stock"), before
        pid = _server_pid()
        assert _files_open_under(pid, alpha)  # the index the search opened

        folders[:] = [beta]
        await _roots_changed(session)
        after = _payload(await session.call_tool("search", {"query": "charge a credit card", "k": 1}))
        assert (after["root"], after["results"][0]["name"]) == (str(beta), "charge_credit_card"), after
        status = _payload(await session.call_tool("status", {}))
        assert status["root"] == str(beta) and "repos" not in status, status
        refused = await session.call_tool("search", {"query": "reserve stock", "path": str(alpha)})
        assert refused.is_error and "is not a folder this server serves" in _text(refused), _text(refused)
        refused = await session.call_tool("similar", {"path": str(alpha / "inventory.py"), "line": 1})
        assert refused.is_error and f"is outside the indexed folder {beta}" in _text(refused), _text(refused)
        assert _files_open_under(pid, alpha) == []
    assert len(asked) == 2  # once before the first call, once after the change


async def test_a_folder_still_open_keeps_its_index_and_one_in_use_closes_after_the_call(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user swaps one of two workspace folders: the one still open keeps its live index (not reopened nor
    rebuilt), the one removed is closed, but only once the calls running at the change have ended (one may be
    searching it); offered again before then, it serves again as it was."""
    from mcp import Client

    from codeneedle.server.mcp_server import NeedleMCP, build_server

    alpha, beta, gamma = (_repo(tmp_path / "alpha", ALPHA), _repo(tmp_path / "beta", BETA),
                          _repo(tmp_path / "gamma", GAMMA))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.delenv("NEEDLE_ROOT", raising=False)
    monkeypatch.delenv("NEEDLE_EXTRA_ROOTS", raising=False)
    monkeypatch.chdir(elsewhere)
    needle = NeedleMCP()
    folders, asked = [alpha, gamma], []
    try:
        async with Client(build_server(needle), mode="legacy",
                          list_roots_callback=_roots_callback(folders, asked)) as client:
            found = _payload(await client.call_tool("search", {"query": "the next weekday", "k": 1}))
            assert (found["results"][0]["repo"], found["results"][0]["name"]) == (str(gamma), "next_business_day")
            kept, dropped = needle._repos[gamma], needle._repos[alpha]

            with needle.calling():  # a call still running when the user swaps the folder
                folders[:] = [beta, gamma]
                await _roots_changed(client.session)
                status = _payload(await client.call_tool("status", {}))
                assert [r["root"] for r in status["repos"]] == [str(beta), str(gamma)], status
                assert needle._repos[gamma] is kept and not kept.live.wait_closed(0)
                assert alpha not in needle._repos and not dropped.live.wait_closed(0)  # in use: still open
                folders[:] = [alpha, gamma]  # ... and the user takes it back before that call ends
                await _roots_changed(client.session)
                await client.call_tool("status", {})
                assert needle._repos[alpha] is dropped and beta not in needle._repos
            assert not dropped.live.wait_closed(0) and not kept.live.wait_closed(0)

            with needle.calling():
                folders[:] = [gamma]
                await _roots_changed(client.session)
                await client.call_tool("status", {})
                assert not dropped.live.wait_closed(0)
            assert dropped.live.wait_closed(0)  # closed as that call ended
            assert needle._repos[gamma] is kept and not kept.live.wait_closed(0)
            found = _payload(await client.call_tool("search", {"query": "the next weekday", "k": 1}))
            assert (found["root"], found["results"][0]["name"]) == (str(gamma), "next_business_day"), found
    finally:
        needle.close()
    assert len(asked) == 4


async def test_a_named_root_is_not_replaced_by_the_client_s_folders(tmp_path: Path) -> None:
    """NEEDLE_ROOT names the repository: the client's roots, changed or not, are not asked for and not served."""
    alpha, beta = _repo(tmp_path / "alpha", ALPHA), _repo(tmp_path / "beta", BETA)
    folders, asked = [beta], []
    async with mcp_session(_params(alpha, cwd=tmp_path), tmp_path / "server.log",
                           list_roots_callback=_roots_callback(folders, asked)) as session:
        await _roots_changed(session)
        found = _payload(await session.call_tool("search", {"query": "hold stock in the warehouse", "k": 1}))
        assert (found["root"], found["results"][0]["name"]) == (str(alpha), "reserve_stock"), found
        refused = await session.call_tool("search", {"query": "charge a credit card", "path": str(beta)})
        assert refused.is_error and "is not a folder this server serves" in _text(refused), _text(refused)
    assert asked == []


async def test_a_client_whose_roots_list_fails_after_a_change_keeps_its_folders(tmp_path: Path) -> None:
    """The client says its roots changed, then fails roots/list: the server keeps serving the folders it had (a
    warning in its log), and does not ask again on every call until the client says they changed again."""
    alpha, beta = _repo(tmp_path / "alpha", ALPHA), _repo(tmp_path / "beta", BETA)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    folders, asked, failing = [alpha], [], []
    params = _params(alpha, cwd=elsewhere, COLUMNS="1000")  # the log's lines unwrapped
    params.env.pop("NEEDLE_ROOT")
    log = tmp_path / "server.log"
    async with mcp_session(params, log, list_roots_callback=_roots_callback(folders, asked, failing)) as session:
        first = _payload(await session.call_tool("search", {"query": "hold stock in the warehouse", "k": 1}))
        assert first["root"] == str(alpha), first

        folders[:], failing[:] = [beta], [True]
        await _roots_changed(session)
        for query in ("postage for a parcel", "hold stock in the warehouse"):
            found = _payload(await session.call_tool("search", {"query": query, "k": 1, "path": str(alpha)}))
            assert found["root"] == str(alpha) and found["results"], found
        assert len(asked) == 2

        failing.clear()
        await _roots_changed(session)
        moved = _payload(await session.call_tool("search", {"query": "charge a credit card", "k": 1}))
        assert (moved["root"], moved["results"][0]["name"]) == (str(beta), "charge_credit_card"), moved
    assert len(asked) == 3
    assert f"roots/list failed (the workspace is being reloaded); serving {alpha}" in log.read_text()
