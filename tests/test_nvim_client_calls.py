"""The Neovim plugin supports 0.10 and 0.11+, whose `vim.lsp.Client` methods take different call forms.

On 0.10 a client's methods are closures over the client (`client.notify(method, params)`): the colon form passes
the client itself as the first argument, so `client:notify(...)` sends a table as the method and fails. 0.11+
made them methods (`client:notify(...)`; the dot form is deprecated). The tests' Neovim is 0.12, so the 0.10
path never runs here: this reads the plugin's Lua instead and requires every client-method call to sit in a
shim that holds both forms behind the version check.
"""

from __future__ import annotations

import re
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[1] / "editors" / "nvim"
METHODS = "request|request_sync|notify|is_stopped|stop|cancel_request|supports_method|exec_cmd|on_attach"
CALL = re.compile(rf"\bclient([:.])({METHODS})\s*\(")
TOP_LEVEL_FUNCTION = re.compile(r"^(?:local\s+)?function\s+([\w.:]+)")


def top_level_blocks(source: str) -> list[tuple[str, str]]:
    """(name, text) of each top-level function (from its `function` line to the `end` at column 0), plus the
    code outside them as one block named ''."""
    blocks: list[tuple[str, str]] = []
    outside: list[str] = []
    name, body = "", []
    for line in source.splitlines():
        if not name and (m := TOP_LEVEL_FUNCTION.match(line)):
            name, body = m.group(1), [line]
        elif name:
            body.append(line)
            if line == "end":
                blocks.append((name, "\n".join(body)))
                name, body = "", []
        else:
            outside.append(line)
    blocks.append(("", "\n".join(outside)))
    return blocks


def test_every_client_method_call_goes_through_a_shim_for_0_10_and_0_11() -> None:
    files = [p for p in sorted(PLUGIN.rglob("*.lua")) if "tests" not in p.relative_to(PLUGIN).parts]
    assert files
    offenders = []
    for path in files:
        for name, text in top_level_blocks(path.read_text()):
            text = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("--"))
            colon = {m.group(2) for m in CALL.finditer(text) if m.group(1) == ":"}
            dot = {m.group(2) for m in CALL.finditer(text) if m.group(1) == "."}
            if (colon or dot) and (colon != dot or "has_011" not in text):
                offenders.append(f"{path.relative_to(PLUGIN)}: {name or '(top level)'} calls "
                                 f"{sorted(colon | dot)} without both forms behind has_011")
    assert not offenders, "\n".join(offenders)
