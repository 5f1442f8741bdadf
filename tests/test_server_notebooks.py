"""`needle lsp` with a Jupyter notebook, as VS Code talks to it (pytest-lsp, its recorded capabilities): a result in
a notebook carries its cell and the lines in it, and needle.similar answers for a line of a cell."""

from __future__ import annotations

import asyncio
import shutil
import time

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.conftest import FIXTURES, NEEDLE

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

HELPERS = 'import csv\n\n\ndef read_rows(path):\n    """Read the rows of a CSV file."""\n    return list(csv.reader(path))\n'


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=[str(NEEDLE), "lsp"]))
async def client(lsp_client: LanguageClient, tmp_path_factory):
    repo = tmp_path_factory.mktemp("vscode") / "repo"
    repo.mkdir()
    shutil.copy(FIXTURES / "formats" / "sales.ipynb", repo / "sales.ipynb")
    (repo / "helpers.py").write_text(HELPERS)
    lsp_client.repo = repo
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=repo.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=repo.as_uri(), name="repo")]))
    deadline = time.monotonic() + 240
    while (await command(lsp_client, "needle.status"))["state"] != "ready" and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
    yield
    await lsp_client.shutdown_session()


async def command(client: LanguageClient, name: str, **arguments):
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=[arguments] if arguments else []))


def lines(first: int, after_last: int) -> dict:
    return {"start": {"line": first, "character": 0}, "end": {"line": after_last, "character": 0}}


async def test_a_result_in_a_notebook_carries_its_cell_and_the_lines_in_it(client: LanguageClient):
    hits = await command(client, "needle.search", query="read the monthly sales csv into a data frame", k=3)
    top = hits[0]
    assert (top["uri"], top["name"]) == ((client.repo / "sales.ipynb").as_uri(), "load_sales")
    assert top["range"]["start"]["line"] == 34  # the .ipynb's own line, for an editor that shows its text
    # The second cell (0-based 1), its lines 5-7 (0-based 4-6): whole lines, up to the start of the next one.
    assert top["cell"] == {"index": 1, "range": lines(4, 7)}
    fit = next(h for h in await command(client, "needle.search", query="Trend.fit", k=5) if h["name"] == "Trend.fit")
    assert fit["range"]["start"]["line"] == fit["range"]["end"]["line"] == 47  # a source written as one string
    assert fit["cell"] == {"index": 2, "range": lines(1, 3)}
    rows = next(h for h in await command(client, "needle.search", query="read the rows of a csv file", k=5)
                if h["name"] == "read_rows")
    assert "cell" not in rows


async def test_similar_answers_for_a_line_of_a_cell_saved_or_edited(client: LanguageClient):
    uri = (client.repo / "sales.ipynb").as_uri()
    saved = await command(client, "needle.similar", uri=uri, position={"line": 5, "character": 4}, cell=1, k=5)
    by_file_line = await command(client, "needle.similar", uri=uri, position={"line": 35, "character": 4}, k=5)
    assert saved == by_file_line  # load_sales, by its line in the cell or in the .ipynb
    assert "read_rows" in [h["name"] for h in saved] and "load_sales" not in [h["name"] for h in saved]
    edited = "import pandas as pd\n\n\ndef load_sales(path, sep=';'):\n    return pd.read_csv(path, sep=sep)\n"
    unsaved = await command(client, "needle.similar", uri=uri, position={"line": 4, "character": 4}, cell=1, k=5,
                            text=edited)
    assert "read_rows" in [h["name"] for h in unsaved] and "load_sales" not in [h["name"] for h in unsaved]
    with pytest.raises(JsonRpcException, match="no indexed code at sales.ipynb cell 9 line 1"):
        await command(client, "needle.similar", uri=uri, position={"line": 0}, cell=8)
    with pytest.raises(JsonRpcException) as err:
        await command(client, "needle.similar", uri=uri, position={"line": 0}, cell=-1)
    assert err.value.code == -32602 and "cell must be >= 0" in err.value.message
