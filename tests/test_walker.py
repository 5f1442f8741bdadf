"""Which files get indexed: the walker's contract, on real files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from codeneedle.errors import NeedleError
from codeneedle.indexer import walker as walker_module
from codeneedle.indexer.ignore import IgnoreRules, is_ignore_file
from codeneedle.indexer.secrets import DEFAULT_SECRET_PATTERNS, secret_patterns
from codeneedle.indexer.walker import (
    MAX_SKIPPED_PATHS,
    SourceFile,
    read_source,
    sniff_binary,
    stat_one,
    walk,
)
from tests.badinput.make_corpus import OpenRecorder, permissions_enforced


def make_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def indexed(root: Path, rules: IgnoreRules | None = None, **kwargs: int) -> list[str]:
    return [sf.path for sf in walk(root, rules, **kwargs).files]


def reasons(root: Path, rules: IgnoreRules | None = None, **kwargs: int) -> dict[str, str]:
    return dict(walk(root, rules, **kwargs).skipped_paths)


# -- the basics ---------------------------------------------------------------------------------------


def test_lists_files_with_relative_posix_paths_sorted_and_stats_them(tmp_path: Path) -> None:
    make_tree(tmp_path, {"b.py": "x = 1\n", "a/z.go": "package a\n", "a/b/c.rs": "fn c() {}\n"})
    result = walk(tmp_path)
    assert [sf.path for sf in result.files] == ["a/b/c.rs", "a/z.go", "b.py"]
    first = result.files[0]
    assert first.abs_path == tmp_path.resolve() / "a" / "b" / "c.rs"
    assert first.size == len("fn c() {}\n")
    assert first.mtime_ns == os.stat(first.abs_path).st_mtime_ns
    assert result.skipped == {} and result.skipped_paths == []


def test_walk_never_opens_source_files(tmp_path: Path) -> None:
    make_tree(tmp_path, {f"pkg{i}/mod{j}.py": "pass\n" for i in range(5) for j in range(20)})
    make_tree(tmp_path, {".gitignore": "*.log\n"})
    with OpenRecorder.recording() as rec:
        result = walk(tmp_path)
    assert len(result.files) == 100
    opened = {Path(p).name for p in rec.paths if not os.path.isdir(p)}
    assert opened <= {".gitignore", ".needleignore", "exclude"}


def test_missing_or_non_folder_root_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NeedleError, match="no such folder"):
        walk(tmp_path / "nope")
    (tmp_path / "file.py").write_text("x\n")
    with pytest.raises(NeedleError, match="not a folder"):
        walk(tmp_path / "file.py")


# -- gitignore semantics ------------------------------------------------------------------------------


def test_nested_gitignore_patterns_are_relative_to_their_folder(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "*.log\n/top_only.txt\n",
            "top_only.txt": "",
            "keep.py": "",
            "app.log": "",
            "sub/.gitignore": "/anchored.txt\nlocal.txt\n",
            "sub/anchored.txt": "",
            "sub/deeper/anchored.txt": "",
            "sub/deeper/local.txt": "",
            "sub/top_only.txt": "",
            "sub/debug.log": "",
            "other/local.txt": "",
        },
    )
    assert indexed(tmp_path) == ["keep.py", "other/local.txt", "sub/deeper/anchored.txt", "sub/top_only.txt"]
    skipped = reasons(tmp_path)
    assert skipped["sub/anchored.txt"] == skipped["sub/debug.log"] == "gitignore"


def test_deeper_gitignore_overrides_shallower_and_negation_reincludes(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "*.txt\n!important.txt\n",
            "notes.txt": "",
            "important.txt": "",
            "docs/.gitignore": "!*.txt\nscratch.txt\n",
            "docs/guide.txt": "",
            "docs/scratch.txt": "",
            "docs/inner/more.txt": "",
        },
    )
    assert indexed(tmp_path) == ["docs/guide.txt", "docs/inner/more.txt", "important.txt"]


def test_a_file_inside_an_ignored_folder_cannot_be_reincluded(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "build/\n!build/keep.py\nout/*\n!out/keep.py\n",
            "build/keep.py": "",
            "build/gen.py": "",
            "out/keep.py": "",
            "out/gen.py": "",
        },
    )
    result = walk(tmp_path)
    # "build/" ignores the folder itself (pruned, counted once); "out/*" ignores only its children
    assert [sf.path for sf in result.files] == ["out/keep.py"]
    assert dict(result.skipped_paths) == {".gitignore": "hidden", "build": "gitignore", "out/gen.py": "gitignore"}
    assert result.skipped == {"gitignore": 2, "hidden": 1}


def test_wildcards_follow_git(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "a?c.txt\n[bc]at.txt\n*.dat[0-9]\ndocs/**/*.tmp\n**/cache\nname\\ with\\ space.txt\n"
            "trailing.txt   \n\\#hash.txt\n\\!bang.txt\nx/**\n!x/keep.py\n",
            "abc.txt": "",
            "a/c.txt": "",
            "bat.txt": "",
            "rat.txt": "",
            "v.dat1": "",
            "v.datx": "",
            "docs/a.tmp": "",
            "docs/deep/er/b.tmp": "",
            "a.tmp": "",
            "deep/down/cache/c.py": "",
            "name with space.txt": "",
            "trailing.txt": "",
            "#hash.txt": "",
            "!bang.txt": "",
            "x/y/z.py": "",
            "x/keep.py": "",
        },
    )
    assert indexed(tmp_path) == ["a.tmp", "a/c.txt", "rat.txt", "v.datx", "x/keep.py"]


def test_git_info_exclude_applies_below_every_gitignore(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".git/info/exclude": "*.local\nscratch/\n",
            ".gitignore": "!keep.local\n",
            "a.local": "",
            "keep.local": "",
            "scratch/x.py": "",
            "main.py": "",
        },
    )
    assert indexed(tmp_path) == ["keep.local", "main.py"]
    assert reasons(tmp_path)["scratch"] == "gitignore"


def test_parent_repository_gitignore_applies_when_the_root_is_a_subfolder(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".git/info/exclude": "*.bak\n",
            ".gitignore": "generated/\npkg/local_only.py\n",
            "pkg/generated/gen.py": "",
            "pkg/local_only.py": "",
            "pkg/old.bak": "",
            "pkg/main.py": "",
        },
    )
    assert indexed(tmp_path / "pkg") == ["main.py"]
    without = IgnoreRules(tmp_path / "pkg", parent_ignores=False)
    assert indexed(tmp_path / "pkg", without) == ["generated/gen.py", "local_only.py", "main.py", "old.bak"]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_agrees_with_git_on_which_files_are_untracked_and_not_ignored(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "*.log\n!important.log\nbuild/\n/top.txt\ndocs/**/*.tmp\n**/cache\nfoo/*\n"
            "!foo/keep.py\na?c.txt\n[bc]at.txt\n*.dat[0-9]\nout/\n!out/keep.txt\nabc/**\n!abc/x.py\n"
            "[!a-m]*.q\n*.[[:digit:]]x\n",
            "sub/.gitignore": "!*.log\nlocal.txt\n/anchored.txt\ndeep/\n",
            "sub/inner/.gitignore": "*.txt\n!keep.txt\n",
            ".git/info/exclude": "excluded_by_info.py\n",
        },
    )
    names = [
        "a.log", "important.log", "build/x.py", "sub/build/y.py", "top.txt", "sub/top.txt",
        "docs/x.tmp", "docs/a/b/y.tmp", "x.tmp", "cache/z.py", "p/q/cache/z.py", "foo/a.py",
        "foo/keep.py", "foo/bar/b.py", "abc.txt", "axc.txt", "bat.txt", "mat.txt", "v.dat1", "v.data",
        "out/keep.txt", "out/x.txt", "abc/x.py", "abc/y.py", "abc/d/z.py", "sub/a.log", "sub/local.txt",
        "sub/x/local.txt", "sub/anchored.txt", "sub/x/anchored.txt", "sub/deep/f.py", "sub/inner/a.txt",
        "sub/inner/keep.txt", "sub/inner/c.py", "excluded_by_info.py", "sub/excluded_by_info.py",
        "z.q", "b.q", "v.1x", "v.ax", "plain.py",
    ]  # fmt: skip
    make_tree(tmp_path, dict.fromkeys(names, ""))
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    listing = subprocess.run(
        ["git", "-C", str(tmp_path), "ls-files", "--others", "--exclude-standard", "-z"],
        check=True,
        capture_output=True,
    ).stdout
    by_git = sorted(p for p in os.fsdecode(listing).split("\0") if p and not any(
        part.startswith(".") for part in p.split("/")
    ))  # fmt: skip
    assert indexed(tmp_path) == by_git


_FUZZ_TOKENS = [
    "a", "b", "d", "sub", ".py", "*", "?", "**", "**/", "/**", "[ab]", "[!a]", "[^a]", "[a-c]", "[]a]",
    "[!]a]", "[a-]", "[z-a]", "[[:alpha:]]", "[[:digit:][:alpha:]]", "[[:bogus:]]", "[\\]]", "\\*", "\\?",
    "\\\\", "\\#", "\\!", "#", "!", " ", "\\ ",
]  # fmt: skip
_FUZZ_NAMES = [
    "a", "b", "ab", "ba", "a.py", "b.py", "abc", "[a]", "a b", "a*", "q?", "#a", "!a", "]a", "a-", "^a",
    "a]", "1", "a\\b", "a ", "d", "sub",
]  # fmt: skip


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("engine", ["regex where safe", "automaton for every pattern"])
def test_agrees_with_git_on_random_patterns_and_trees(tmp_path: Path, engine: str, monkeypatch) -> None:
    import random

    from codeneedle.indexer import wildmatch

    if engine.startswith("automaton"):
        # Patterns with several stars always run as the linear-time automaton; this runs every one so.
        monkeypatch.setattr(wildmatch, "REGEX_MAX_STARS", -1)

    rng = random.Random(20240607)

    def pattern() -> str:
        segments = ["".join(rng.choice(_FUZZ_TOKENS) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(1, 3))]
        text = "/".join(segments)
        text = ("/" if rng.random() < 0.2 else "") + text + ("/" if rng.random() < 0.2 else "")
        return ("!" if rng.random() < 0.25 else "") + text

    for trial in range(20):
        root = tmp_path / f"t{trial}"
        for _ in range(30):
            folders = [rng.choice(["d", "e", "sub", "a"]) for _ in range(rng.randint(0, 3))]
            path = root.joinpath(*folders, rng.choice(_FUZZ_NAMES))
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"")
            except OSError:
                pass  # a name already taken by a folder, or the other way round
        for folder in ("", "d", "sub", "d/e"):
            if (root / folder).is_dir():
                lines = [pattern() for _ in range(rng.randint(1, 6))]
                (root / folder / ".gitignore").write_text("\n".join(lines) + "\n")
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        listing = subprocess.run(
            ["git", "-C", str(root), "ls-files", "--others", "--exclude-standard", "-z"],
            check=True,
            capture_output=True,
        ).stdout
        by_git = sorted(p for p in os.fsdecode(listing).split("\0") if p and not any(
            part.startswith(".") for part in p.split("/")
        ))  # fmt: skip
        rules = IgnoreRules(root, secret_patterns=(), parent_ignores=False)
        assert indexed(root, rules) == by_git, (root / ".gitignore").read_text()


def test_rules_follow_ignore_file_changes_after_invalidate(tmp_path: Path) -> None:
    make_tree(tmp_path, {"sub/a.py": "", "sub/b.py": ""})
    rules = IgnoreRules(tmp_path)
    assert rules.is_ignored("sub/a.py", False) is None
    (tmp_path / "sub" / ".gitignore").write_text("a.py\n")
    assert rules.is_ignored("sub/a.py", False) is None  # cached until told
    rules.invalidate("sub/.gitignore")
    assert rules.is_ignored("sub/a.py", False) == "gitignore"
    assert indexed(tmp_path, rules) == ["sub/b.py"]
    (tmp_path / "sub" / ".gitignore").unlink()
    rules.invalidate("sub")
    assert indexed(tmp_path, rules) == ["sub/a.py", "sub/b.py"]


def test_is_ignore_file_names_the_files_that_change_the_rules() -> None:
    assert is_ignore_file(".gitignore") and is_ignore_file("a/b/.gitignore")
    assert is_ignore_file("pkg/.needleignore") and is_ignore_file(".git/info/exclude")
    assert not is_ignore_file("gitignore.py") and not is_ignore_file("a/.gitignore/x")


def test_is_ignored_checks_every_ancestor_folder(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "vendor/\n"})
    rules = IgnoreRules(tmp_path)
    assert rules.is_ignored("vendor/pkg/deep/x.py", False) == "gitignore"
    assert rules.is_ignored("src/.cache/x.py", False) == "hidden"
    assert rules.is_ignored("a/node_modules/b/c.js", False) == "noise"
    assert rules.is_ignored("./src/x.py", False) is None
    with pytest.raises(ValueError):
        rules.is_ignored("../outside.py", False)


# -- .needleignore, hidden, noise -----------------------------------------------------------------------


def test_the_index_and_version_control_folders_are_left_out_without_being_counted(tmp_path: Path) -> None:
    make_tree(tmp_path, {".git/config": "", ".needle/index.db": "", "src/.git/HEAD": "", ".github/ci.yml": "",
                         "src/a.py": ""})
    result = walk(tmp_path)
    assert [sf.path for sf in result.files] == ["src/a.py"]
    assert result.skipped == {"hidden": 1} and dict(result.skipped_paths) == {".github": "hidden"}


def test_needleignore_excludes_and_can_reinclude_what_git_ignores(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "generated/\n*.gen.py\n",
            ".needleignore": "fixtures/\n!*.gen.py\n",
            "fixtures/big.json": "{}",
            "api.gen.py": "",
            "generated/x.py": "",
            "pkg/.needleignore": "*_test.py\n",
            "pkg/a.py": "",
            "pkg/a_test.py": "",
            "a_test.py": "",
        },
    )
    result = walk(tmp_path)
    assert [sf.path for sf in result.files] == ["a_test.py", "api.gen.py", "pkg/a.py"]
    assert dict(result.skipped_paths) == {
        ".gitignore": "hidden",  # ignore files are hidden files like any other
        ".needleignore": "hidden",
        "pkg/.needleignore": "hidden",
        "fixtures": "needleignore",
        "generated": "gitignore",
        "pkg/a_test.py": "needleignore",
    }


def test_hidden_files_and_folders_are_skipped(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {".github/workflows/ci.yml": "", ".venv/lib/x.py": "", ".eslintrc.js": "", "src/.hidden.py": "", "a.py": ""},
    )
    result = walk(tmp_path)
    assert [sf.path for sf in result.files] == ["a.py"]
    assert result.skipped == {"hidden": 4}  # each hidden folder counts once


def test_lock_files_minified_bundles_and_vendored_code_are_noise(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            "package-lock.json": "{}",
            "web/yarn.lock": "",
            "Cargo.lock": "",
            "poetry.lock": "",
            "app.min.js": "",
            "app.js.map": "",
            "node_modules/react/index.js": "",
            "pkg/__pycache__/m.cpython-311.pyc": "",
            "app.js": "",
        },
    )
    result = walk(tmp_path)
    assert [sf.path for sf in result.files] == ["app.js"]
    assert result.skipped == {"noise": 8}


# -- secrets --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        ".env",
        ".env.production",
        "config/prod.env",
        "certs/server.pem",
        "tls.key",
        "store.p12",
        "cert.pfx",
        "id_rsa",
        "home/id_ed25519.pub",
        "android/release.keystore",
        "java/app.jks",
        ".npmrc",
        ".pypirc",
        ".netrc",
        "gcp/credentials-prod.json",
        "client_secret_123.json",
        "k8s/db-secrets.yaml",
        "vault.kdbx",
        "infra/terraform.tfstate",
    ],
)
def test_secrets_are_never_indexed_by_default(tmp_path: Path, name: str) -> None:
    make_tree(tmp_path, {name: "TOKEN=hunter2\n", "main.py": ""})
    assert indexed(tmp_path) == ["main.py"]
    assert "secret" in reasons(tmp_path).values()


def test_secrets_win_over_negations_in_ignore_files(tmp_path: Path) -> None:
    make_tree(tmp_path, {".needleignore": "!*.pem\n", ".gitignore": "!.env\n", "a.pem": "", ".env": ""})
    assert reasons(tmp_path) == {"a.pem": "secret", ".env": "secret", ".gitignore": "hidden", ".needleignore": "hidden"}


def test_settings_add_secret_patterns_and_may_reallow_a_default(tmp_path: Path) -> None:
    make_tree(tmp_path, {"deploy/vault_token.txt": "", "public.pem": "", "main.py": ""})
    rules = IgnoreRules(tmp_path, secret_patterns=secret_patterns(["*_token.txt", "!public.pem"]))
    result = walk(tmp_path, rules)
    assert [sf.path for sf in result.files] == ["main.py", "public.pem"]
    assert dict(result.skipped_paths) == {"deploy/vault_token.txt": "secret"}


def test_user_excludes_from_settings_leave_paths_out_and_win_over_ignore_files(tmp_path: Path) -> None:
    make_tree(tmp_path, {".needleignore": "!lib/\n", "lib/a.rb": "", "docs/x.md": "", "docs/keep.md": "", "main.py": ""})
    rules = IgnoreRules(tmp_path, extra_patterns=["lib/**", "docs/*", "!docs/keep.md"])
    result = walk(tmp_path, rules)
    assert [sf.path for sf in result.files] == ["docs/keep.md", "main.py"]
    assert result.skipped == {"excluded": 2, "hidden": 1}


def test_the_default_secret_list_is_a_documented_constant() -> None:
    assert {".env", ".env.*", "*.pem", "*.key", "id_rsa*"} <= set(DEFAULT_SECRET_PATTERNS)


# -- size and content -----------------------------------------------------------------------------------


def test_files_over_the_size_cap_are_skipped_and_counted(tmp_path: Path) -> None:
    make_tree(tmp_path, {"exact.py": b"x" * 1000, "over.py": b"x" * 1001, "big/a.py": b"y" * 5000})
    result = walk(tmp_path, max_file_bytes=1000)
    assert [sf.path for sf in result.files] == ["exact.py"]
    assert result.skipped == {"too_large": 2}
    assert ("over.py", "too_large") in result.skipped_paths


def test_default_size_cap_is_one_mebibyte(tmp_path: Path) -> None:
    make_tree(tmp_path, {"ok.py": b"#" * (1 << 20), "big.py": b"#" * ((1 << 20) + 1)})
    assert indexed(tmp_path) == ["ok.py"]


def test_binary_sniff_looks_for_a_nul_byte_in_the_first_8_kib() -> None:
    assert sniff_binary(b"abc\x00def")
    assert not sniff_binary("plain text, ünïcode".encode())
    assert not sniff_binary(b"x" * 8192 + b"\x00")  # past the sniff window
    assert not sniff_binary("utf-16".encode("utf-16"))  # with its byte-order mark: text (tests/test_wide_encodings.py)
    assert sniff_binary("utf-16".encode("utf-16-le"))  # without one: binary, as git reads it
    assert not sniff_binary(b"")


def test_read_source_returns_bytes_or_says_binary(tmp_path: Path) -> None:
    make_tree(tmp_path, {"ok.py": "print('hi')\n", "blob.py": b"\x7fELF\x00\x01", "latin.py": "é".encode("latin-1")})
    files = {sf.path: sf for sf in walk(tmp_path).files}
    assert read_source(files["ok.py"]) == b"print('hi')\n"
    assert read_source(files["blob.py"]) == "binary"
    assert read_source(files["latin.py"]) == b"\xe9"


# -- symlinks -------------------------------------------------------------------------------------------


def test_a_symlinked_file_inside_the_root_is_indexed_once(tmp_path: Path) -> None:
    make_tree(tmp_path, {"real.py": "x = 1\n"})
    (tmp_path / "alias.py").symlink_to("real.py")
    result = walk(tmp_path)
    assert [sf.path for sf in result.files] == ["real.py"]
    assert dict(result.skipped_paths) == {"alias.py": "symlink_duplicate"}


def test_a_symlinked_folder_inside_the_root_adds_nothing_twice(tmp_path: Path) -> None:
    make_tree(tmp_path, {"lib/a.py": "", "lib/b.py": ""})
    (tmp_path / "alias").symlink_to("lib")
    (tmp_path / "lib" / "again").symlink_to("../alias")
    result = walk(tmp_path)
    assert [sf.path for sf in result.files] == ["lib/a.py", "lib/b.py"]
    assert dict(result.skipped_paths) == {"alias": "symlink_duplicate", "lib/again": "symlink_loop"}


def test_a_symlink_reaching_what_the_direct_walk_cannot_is_followed(tmp_path: Path, monkeypatch) -> None:
    make_tree(tmp_path, {"hidden_by_perm/x.py": "", "main.py": ""})
    (tmp_path / "door").symlink_to("hidden_by_perm")
    real_scandir = os.scandir
    blocked = str(tmp_path.resolve() / "hidden_by_perm")
    calls = {"n": 0}

    def scandir(path):
        # the first listing of the folder is refused, as a folder without read permission would be
        if os.fspath(path) == blocked and calls["n"] == 0:
            calls["n"] += 1
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(walker_module.os, "scandir", scandir)
    result = walk(tmp_path)
    assert [sf.path for sf in result.files] == ["door/x.py", "main.py"]
    assert dict(result.skipped_paths) == {"hidden_by_perm": "unreadable"}


def test_symlink_loops_are_counted_not_followed(tmp_path: Path) -> None:
    make_tree(tmp_path, {"sub/a.py": ""})
    (tmp_path / "sub" / "up").symlink_to("..")
    (tmp_path / "here").symlink_to(".")
    (tmp_path / "ping").symlink_to("pong")
    (tmp_path / "pong").symlink_to("ping")
    result = walk(tmp_path)
    assert [sf.path for sf in result.files] == ["sub/a.py"]
    assert result.skipped == {"symlink_loop": 4}


def test_symlinks_leaving_the_root_are_never_read(tmp_path: Path) -> None:
    outside = make_tree(tmp_path / "outside", {"secret.py": "OUTSIDE\n", "dir/inner.py": "OUTSIDE\n"})
    root = make_tree(tmp_path / "root", {"main.py": ""})
    (root / "file_link.py").symlink_to(outside / "secret.py")
    (root / "dir_link").symlink_to("../outside/dir")
    (root / "abs_link").symlink_to("/etc")
    (root / "dangling.py").symlink_to("nowhere.py")
    with OpenRecorder.recording() as rec:
        result = walk(root)
        contents = [read_source(sf) for sf in result.files]
    assert [sf.path for sf in result.files] == ["main.py"]
    assert contents == [b""]
    assert dict(result.skipped_paths) == {
        "file_link.py": "symlink_outside",
        "dir_link": "symlink_outside",
        "abs_link": "symlink_outside",
        "dangling.py": "symlink_broken",
    }
    assert rec.outside(root) == []


def test_a_symlink_cannot_smuggle_in_an_ignored_file(tmp_path: Path) -> None:
    make_tree(tmp_path, {".env": "TOKEN=x\n", "build/gen.py": "", ".gitignore": "build/\n"})
    (tmp_path / "settings.py").symlink_to(".env")
    (tmp_path / "gen_link").symlink_to("build")
    assert reasons(tmp_path) == {
        ".env": "secret",
        ".gitignore": "hidden",
        "build": "gitignore",
        "settings.py": "secret",
        "gen_link": "gitignore",
    }
    assert indexed(tmp_path) == []


# -- permissions, races, odd names and file types -------------------------------------------------------


def test_permission_denied_folder_and_file_are_counted_and_the_walk_goes_on(tmp_path: Path) -> None:
    if not permissions_enforced(tmp_path):
        pytest.skip("running with privileges that read anything (root); see the simulated tests")
    make_tree(tmp_path, {"closed/x.py": "", "locked.py": "", "open.py": ""})
    (tmp_path / "closed").chmod(0)
    (tmp_path / "locked.py").chmod(0)
    try:
        result = walk(tmp_path)
        assert [sf.path for sf in result.files] == ["open.py"]
        assert dict(result.skipped_paths) == {"closed": "unreadable", "locked.py": "unreadable"}
    finally:
        (tmp_path / "closed").chmod(0o755)
        (tmp_path / "locked.py").chmod(0o644)


def test_a_folder_that_refuses_listing_is_counted_and_the_walk_goes_on(tmp_path: Path, monkeypatch) -> None:
    make_tree(tmp_path, {"closed/x.py": "", "open/y.py": ""})
    real_scandir = os.scandir
    closed = str(tmp_path.resolve() / "closed")

    def scandir(path):
        if os.fspath(path) == closed:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(walker_module.os, "scandir", scandir)
    result = walk(tmp_path)
    assert [sf.path for sf in result.files] == ["open/y.py"]
    assert dict(result.skipped_paths) == {"closed": "unreadable"}


def test_a_file_without_read_permission_is_counted(tmp_path: Path, monkeypatch) -> None:
    make_tree(tmp_path, {"locked.py": "", "open.py": ""})
    (tmp_path / "locked.py").chmod(0o200)
    # root passes os.access for anything; answer as the kernel would for an ordinary user
    monkeypatch.setattr(walker_module.os, "access", lambda path, mode: not str(path).endswith("locked.py"))
    result = walk(tmp_path)
    assert [sf.path for sf in result.files] == ["open.py"]
    assert dict(result.skipped_paths) == {"locked.py": "unreadable"}


def test_an_unreadable_root_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    def scandir(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(walker_module.os, "scandir", scandir)
    with pytest.raises(NeedleError, match="cannot list folder"):
        walk(tmp_path)


def test_a_folder_that_vanishes_during_the_walk_is_counted_missing(tmp_path: Path, monkeypatch) -> None:
    make_tree(tmp_path, {"gone/x.py": "", "stays/y.py": ""})
    real_scandir = os.scandir
    gone = str(tmp_path.resolve() / "gone")

    def scandir(path):
        if not isinstance(path, int) and os.fspath(path) == gone:
            shutil.rmtree(gone)  # deleted after the parent listed it, before it is listed itself
        return real_scandir(path)

    monkeypatch.setattr(walker_module.os, "scandir", scandir)
    result = walk(tmp_path)
    assert [sf.path for sf in result.files] == ["stays/y.py"]
    assert dict(result.skipped_paths) == {"gone": "missing"}


def test_files_that_change_between_walk_and_read(tmp_path: Path) -> None:
    make_tree(tmp_path, {"gone.py": "x\n", "grows.py": "x\n", "swapped.py": "x\n", "piped.py": "x\n", "ok.py": "y\n"})
    outside = make_tree(tmp_path.parent / f"{tmp_path.name}-outside", {"secret.py": "OUTSIDE\n"})
    files = {sf.path: sf for sf in walk(tmp_path, max_file_bytes=100).files}
    (tmp_path / "gone.py").unlink()
    (tmp_path / "grows.py").write_bytes(b"x" * 101)
    (tmp_path / "swapped.py").unlink()
    (tmp_path / "swapped.py").symlink_to(outside / "secret.py")
    (tmp_path / "piped.py").unlink()
    os.mkfifo(tmp_path / "piped.py")
    with OpenRecorder.recording() as rec:
        got = {path: read_source(sf, 100) for path, sf in files.items()}
    assert got == {
        "gone.py": "missing",
        "grows.py": "too_large",
        "swapped.py": "missing",
        "piped.py": "special",
        "ok.py": b"y\n",
    }
    assert rec.outside(tmp_path) == []


def test_names_with_newlines_and_non_ascii_work(tmp_path: Path) -> None:
    names = ["new\nline.py", "ünïcødé.py", "日本語/ファイル.py", "emoji_🚀.py", "tab\tand space.py"]
    make_tree(tmp_path, {name: f"# {name!r}\n" for name in names})
    make_tree(tmp_path, {".gitignore": "*.log\n"})
    files = walk(tmp_path).files
    assert [sf.path for sf in files] == sorted(names)
    assert all(read_source(sf) == f"# {sf.path!r}\n".encode() for sf in files)


def test_newlines_in_names_do_not_confuse_ignore_patterns(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "*.log\nbuild/\n", "a\nb.log": "", "x\nbuild/y.py": "", "a\n.py": ""})
    assert indexed(tmp_path) == ["a\n.py", "x\nbuild/y.py"]


def test_names_that_are_not_utf8_are_skipped_with_a_printable_path(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path)
    with open(root + b"/bad\xff.py", "wb") as fh:
        fh.write(b"x\n")
    os.mkdir(root + b"/dir\xfe")
    (tmp_path / "ok.py").write_text("x\n")
    result = walk(tmp_path)
    assert [sf.path for sf in result.files] == ["ok.py"]
    assert sorted(result.skipped_paths) == [("bad\\xff.py", "bad_name"), ("dir\\xfe", "bad_name")]
    for path, _ in result.skipped_paths:
        path.encode("utf-8")  # safe for SQLite and JSON


def test_fifos_are_special_and_never_opened(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.py": ""})
    os.mkfifo(tmp_path / "pipe.py")
    os.mkfifo(tmp_path / ".gitignore")  # must not hang the ignore rules either
    result = walk(tmp_path)
    assert [sf.path for sf in result.files] == ["a.py"]
    assert dict(result.skipped_paths) == {"pipe.py": "special", ".gitignore": "hidden"}


def test_skipped_paths_are_capped_but_counts_are_complete(tmp_path: Path) -> None:
    make_tree(tmp_path, {f"k{i}.pem": "" for i in range(MAX_SKIPPED_PATHS + 5)})
    result = walk(tmp_path)
    assert result.skipped == {"secret": MAX_SKIPPED_PATHS + 5}
    assert result.skipped_total == MAX_SKIPPED_PATHS + 5
    assert len(result.skipped_paths) == MAX_SKIPPED_PATHS


# -- single paths, for the watcher ----------------------------------------------------------------------


def test_stat_one_agrees_with_walk_for_single_paths(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {".gitignore": "vendor/\n", "a.py": "x\n", "vendor/v.py": "", ".env": "", "big.py": b"x" * 200, "pkg/b.py": ""},
    )
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "alias.py").symlink_to("a.py")
    (tmp_path / "out.py").symlink_to("/etc/passwd")
    (tmp_path / "door").symlink_to("pkg")
    rules = IgnoreRules(tmp_path)
    found = stat_one(tmp_path, "a.py", rules, 100)
    assert isinstance(found, SourceFile)
    assert (found.path, found.size, found.abs_path) == ("a.py", 2, tmp_path.resolve() / "a.py")
    expected = {
        "vendor/v.py": "gitignore",
        "vendor": "gitignore",
        ".env": "secret",
        "big.py": "too_large",
        "pipe.py": "special",
        "alias.py": "symlink_duplicate",
        "out.py": "symlink_outside",
        "door/b.py": "symlink_duplicate",
        "pkg": "directory",
        "gone.py": "missing",
        "../x.py": "outside",
        "/etc/passwd": "outside",
    }
    assert {rel: stat_one(tmp_path, rel, rules, 100) for rel in expected} == expected
