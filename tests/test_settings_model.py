"""The one settings model: editors' camelCase JSON in, clear errors out, `attrs.evolve` overrides, CLI flags onto it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import attrs
import pytest

import codeneedle
from codeneedle.cli import build_parser
from codeneedle.cli_options import FLAG_FIELDS, explicit_from, settings_from
from codeneedle.indexer.settings import (
    DEFAULT_MAX_FILE_BYTES,
    JSON_FIELDS,
    IndexSettings,
    SettingsError,
    from_json,
    merge_json,
    to_json,
)

REPO = Path(__file__).resolve().parents[1]


# -- camelCase JSON in ----------------------------------------------------------------------------------------
def test_editor_json_uses_camel_case_keys_for_every_field():
    raw = {"model": "minilm", "indexDir": "/tmp/idx", "maxFileBytes": 4096, "exclude": ["dist/**"],
           "feedback": False, "rerank": False, "extraRoots": ["/srv/lib"]}
    settings = from_json(raw)
    assert settings == IndexSettings(model="minilm", index_dir=Path("/tmp/idx"), max_file_bytes=4096,
                                     exclude=("dist/**",), feedback=False, rerank=False, extra_roots=("/srv/lib",))
    assert to_json(settings) == raw  # and back, as an editor would write it


def test_json_values_are_normalised_like_an_editor_means_them():
    settings = from_json({"maxFileBytes": 2048.0, "exclude": "build/", "indexDir": "", "model": ""})
    assert settings.max_file_bytes == 2048 and settings.exclude == ("build/",)
    assert settings.index_dir is None and settings.model is None  # "" is "the default", as null is


def test_unknown_keys_are_left_to_the_editor():
    assert from_json({"search": {"maxResults": 20}, "trace": {"server": "off"}}) == IndexSettings()


def test_null_means_the_default_but_never_turns_feedback_back_on():
    base = IndexSettings(model="minilm", max_file_bytes=10, exclude=("x",), feedback=False)
    settings = from_json({"model": None, "maxFileBytes": None, "exclude": None, "feedback": None}, base)
    assert settings == IndexSettings(feedback=False)


def test_every_server_setting_of_the_vscode_extension_is_a_model_field():
    manifest = json.loads((REPO / "editors/vscode/package.json").read_text())
    properties = manifest["contributes"]["configuration"]["properties"]
    own = ("needle.server.", "needle.search.", "needle.trace.")  # the extension's own, never sent as settings
    server_keys = {k.removeprefix("needle.") for k in properties if not k.startswith(own)}
    assert server_keys == {"model", "indexDir", "maxFileBytes", "exclude", "feedback", "rerank"}
    assert server_keys <= {key for key, _, _ in JSON_FIELDS.values()}


# -- errors out -----------------------------------------------------------------------------------------------
def test_bad_values_are_one_line_naming_each_key():
    with pytest.raises(SettingsError) as caught:
        from_json({"maxFileBytes": -3, "feedback": "yes", "exclude": [1], "model": "ok"})
    message = str(caught.value)
    assert "\n" not in message
    assert message == ("needle.maxFileBytes: expected a positive integer, got -3; "
                       "needle.exclude: expected a list of glob strings, got [1]; "
                       "needle.feedback: expected true or false, got 'yes'")
    assert set(caught.value.problems) == {"maxFileBytes", "exclude", "feedback"}


@pytest.mark.parametrize("key, value", [
    ("maxFileBytes", True), ("maxFileBytes", 0), ("maxFileBytes", 1.5), ("maxFileBytes", "100"),
    ("model", 5), ("indexDir", "a\0b"), ("extraRoots", "/one/path"), ("feedback", 1),
])
def test_values_of_the_wrong_kind_are_refused(key, value):
    with pytest.raises(SettingsError, match=f"needle.{key}: expected"):
        from_json({key: value})


def test_the_lenient_merge_keeps_the_good_values_and_warns_once_per_bad_one():
    base = IndexSettings(model="minilm")
    settings, warnings = merge_json({"model": 5, "maxFileBytes": 0, "exclude": ["a"]}, base)
    assert settings == IndexSettings(model="minilm", exclude=("a",))  # a bad value leaves the base's in place
    assert warnings == [
        "needle.model: expected a string, got 5; using the default (the server's default)",
        f"needle.maxFileBytes: expected a positive integer, got 0; using the default ({DEFAULT_MAX_FILE_BYTES})",
    ]


# -- evolve overrides -----------------------------------------------------------------------------------------
def test_evolve_overrides_one_field_and_keeps_the_rest():
    base = IndexSettings(index_dir=Path("/idx"), max_file_bytes=99, exclude=("dist/",))
    trained = attrs.evolve(base, model="/models/adapted")
    assert trained == IndexSettings(model="/models/adapted", index_dir=Path("/idx"), max_file_bytes=99,
                                    exclude=("dist/",))


def test_evolve_checks_and_normalises_like_construction():
    assert attrs.evolve(IndexSettings(), exclude=["a", " ", ""]).exclude == ("a",)
    with pytest.raises(ValueError, match="max_file_bytes must be a positive number of bytes, got 0"):
        attrs.evolve(IndexSettings(), max_file_bytes=0)


def test_settings_are_frozen():
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        IndexSettings().model = "minilm"  # type: ignore[misc]


# -- CLI flags onto the model ---------------------------------------------------------------------------------
def test_cli_flags_map_onto_the_model_fields():
    args = build_parser().parse_args(["index", "--model", "minilm", "--index-dir", "/tmp/idx",
                                      "--max-file-bytes", "4096", "--exclude", "dist/**", "--exclude", "*.min.js"])
    assert settings_from(args) == IndexSettings(model="minilm", index_dir=Path("/tmp/idx"), max_file_bytes=4096,
                                                exclude=("dist/**", "*.min.js"))
    assert explicit_from(args) == {"exclude", "max_file_bytes"}


def test_cli_flags_left_out_keep_the_base():
    args = build_parser().parse_args(["search", "query", "--model", "minilm"])
    base = IndexSettings(exclude=("vendor/",), max_file_bytes=5)
    assert settings_from(args, base) == attrs.evolve(base, model="minilm")
    assert settings_from(build_parser().parse_args(["watch"])) == IndexSettings()
    assert explicit_from(build_parser().parse_args(["watch"])) == set()


def test_an_empty_exclude_flag_clears_the_list():
    args = build_parser().parse_args(["index", "--exclude", ""])
    assert settings_from(args, IndexSettings(exclude=("dist/",))).exclude == ()
    assert explicit_from(args) == {"exclude"}  # given, so the cleared list replaces the stored one


def test_every_settings_flag_names_a_model_field():
    assert set(FLAG_FIELDS.values()) <= {f.name for f in attrs.fields(IndexSettings)}


# -- one definition -------------------------------------------------------------------------------------------
def test_the_default_file_size_cap_is_defined_once():
    package = Path(codeneedle.__file__).resolve().parent
    defined = [str(p.relative_to(package)) for p in package.rglob("*.py")
               for node in ast.walk(ast.parse(p.read_text()))
               if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DEFAULT_MAX_FILE_BYTES"
                                                       for t in node.targets)]
    assert defined == ["indexer/types.py"]


def test_per_folder_paths_are_anchored_at_the_folder(tmp_path):
    settings = IndexSettings(index_dir=Path(".cache/needle"), model="./models/mine").for_root(tmp_path)
    assert settings.index_dir == tmp_path / ".cache/needle" and settings.model == str(tmp_path / "models/mine")
    assert IndexSettings(model="minilm", index_dir=Path("/abs")).for_root(tmp_path) == IndexSettings(
        model="minilm", index_dir=Path("/abs"))


# -- sticky settings beside another writer ---------------------------------------------------------------------
def test_index_settings_given_beside_another_writer_wait_until_this_process_writes(tmp_path):
    """The settings file is the writer's: a reader's flags are announced, not stored, while another holds the
    writer lock (a language server), and stored once this process becomes the writer (it takes over)."""
    from codeneedle.indexer.index import Index

    (tmp_path / "a.py").write_text("def f():\n    return 1\n")
    said: list[str] = []
    writer = Index.open(tmp_path, notify=said.append)
    with writer.writing():
        reader = Index.open(tmp_path, IndexSettings(exclude=("web/**",)), explicit=["exclude"], notify=said.append)
        assert not (tmp_path / ".needle/settings.json").exists()
        assert said == ['index settings not stored (exclude "web/**"): another needle process writes this index, '
                        "which is read as that process keeps it"]
    writer.close()
    with reader.writing():
        assert json.loads((tmp_path / ".needle/settings.json").read_text())["exclude"] == ["web/**"]
    reader.close()


def test_a_first_exclude_on_an_index_built_without_one_is_announced(tmp_path):
    """An index built with no setting given has no settings file; `needle search --exclude tests/` on it re-indexes
    as much as any later change, and says so (it went unannounced). A new index's first settings say nothing."""
    from codeneedle.indexer.index import Index

    (tmp_path / "a.py").write_text("def f():\n    return 1\n")
    said: list[str] = []
    Index.open(tmp_path, IndexSettings(max_file_bytes=5000), explicit=["max_file_bytes"], notify=said.append).close()
    assert said == []  # building a new index with a setting changes nothing
    (tmp_path / ".needle/settings.json").unlink()  # as `needle index` with no setting given leaves it
    Index.open(tmp_path, IndexSettings(exclude=("tests/",)), explicit=["exclude"], notify=said.append).close()
    assert said == ['index settings changed (exclude none -> "tests/"): the next update re-indexes the files this '
                    "adds or leaves out"]


# -- sticky settings set by an editor ----------------------------------------------------------------------------
def test_a_setting_removed_in_the_editor_brings_back_what_it_left_out_but_a_command_line_choice_stays(tmp_path):
    """An editor's configuration names every setting, defaults included, so a value equal to the default says
    nothing: the field goes back to it only when an editor stored the value (the user removed the setting); a
    value stored by `needle index --exclude` stays until changed."""
    from codeneedle.indexer import sticky

    index_dir = tmp_path / ".needle"
    said: list[str] = []
    editor = sticky.resolve(index_dir, IndexSettings(exclude=("web/**",), max_file_bytes=300), None, said.append)
    assert editor.exclude == ("web/**",) and editor.max_file_bytes == 300
    removed = sticky.resolve(index_dir, IndexSettings(), None, said.append)
    assert removed.exclude == () and removed.max_file_bytes == IndexSettings().max_file_bytes
    assert said[-1].startswith('index settings changed (exclude "web/**" -> none; max_file_bytes 300 -> ')
    assert sticky.load(index_dir)["exclude"] == []

    sticky.resolve(index_dir, IndexSettings(exclude=("dist/**",)), ["exclude"])  # needle index --exclude dist/**
    assert sticky.resolve(index_dir, IndexSettings(), None).exclude == ("dist/**",)
    assert sticky.load_sources(index_dir)["exclude"] == sticky.COMMAND_LINE

    # a command line giving the very value an editor stored takes it over
    sticky.resolve(index_dir, IndexSettings(exclude=("vendor/**",)), None)
    sticky.resolve(index_dir, IndexSettings(exclude=("vendor/**",)), ["exclude"])
    assert sticky.resolve(index_dir, IndexSettings(), None).exclude == ("vendor/**",)


def test_servers_without_settings_of_their_own_keep_what_an_editor_stored(tmp_path):
    """`needle mcp` (and `needle watch`, `needle train --repo`) name no index settings: an exclude the editor
    stored stands, rather than being read as an editor's setting removed."""
    from codeneedle.indexer import sticky
    from codeneedle.server.mcp_server import NeedleMCP

    (tmp_path / "a.py").write_text("def f():\n    return 1\n")
    index_dir = tmp_path / ".needle"
    sticky.resolve(index_dir, IndexSettings(exclude=("vendor/**",)), None)  # as the language server stores it
    mcp = NeedleMCP(tmp_path)
    try:
        assert mcp.repo().index.settings.exclude == ("vendor/**",)
    finally:
        mcp.close()
    assert sticky.load(index_dir)["exclude"] == ["vendor/**"]
