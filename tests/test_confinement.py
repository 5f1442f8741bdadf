"""Confinement through the CLI: where an index may live, what is never read from outside the root, and
secrets recognised by their content."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import NEEDLE, copy_fixture, run_needle

pytestmark = pytest.mark.slow  # indexing runs over crafted trees, CLI subprocesses

AWS_ID = "AKIA" + "IOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"
GITHUB = "ghp_" + "0123456789abcdefghijklmnopqrstuvwxyz"
SLACK = "xoxb-" + "123456789012-abcdefghijkl"
KEY_BLOCK = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACB\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_fixture("minirepo", tmp_path / "repo")


def _error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stderr.strip().splitlines()[-1]


# -- index folder --------------------------------------------------------------------------------------------
def test_the_index_folder_may_not_be_the_root_or_a_parent_of_it(repo: Path) -> None:
    assert "repository root itself" in _error(run_needle("index", "--index-dir", str(repo), str(repo)))
    assert "parent of the repository" in _error(run_needle("index", "--index-dir", str(repo.parent), str(repo)))
    assert not (repo / "index.db").exists() and not (repo / ".gitignore").exists()
    assert not (repo.parent / "index.db").exists() and not (repo.parent / ".gitignore").exists()


def test_a_folder_holding_someone_elses_files_is_refused_and_left_untouched(repo: Path, tmp_path: Path) -> None:
    ssh = tmp_path / "dot-ssh"
    ssh.mkdir()
    (ssh / "id_ed25519").write_text(KEY_BLOCK)
    (ssh / "known_hosts").write_text("example.com ssh-ed25519 AAAA\n")
    line = _error(run_needle("index", "--index-dir", str(ssh), str(repo)))
    assert "holds files that are not Needle's" in line and "id_ed25519" in line
    assert sorted(p.name for p in ssh.iterdir()) == ["id_ed25519", "known_hosts"]


def test_an_index_folder_that_cannot_be_made_says_why_and_where_to_choose_another(repo: Path) -> None:
    (repo / ".needle").write_text("not a folder\n")
    line = _error(run_needle("index", str(repo)))
    assert "a file of that name is in the way" in line and "--index-dir" in line, line
    assert (repo / ".needle").read_text() == "not a folder\n"


def test_another_repository_named_as_the_index_folder_keeps_its_gitignore(repo: Path, tmp_path: Path) -> None:
    """A repository root holding only folders and its own .gitignore (--index-dir ../other by mistake): writing
    Needle's ``*`` over that .gitignore hid the whole repository from git. It is refused and left as it was."""
    other = tmp_path / "other"
    (other / "src").mkdir(parents=True)
    (other / "src" / "app.py").write_text("def main():\n    pass\n")
    (other / ".gitignore").write_text("build/\n")
    line = _error(run_needle("index", "--index-dir", str(other), str(repo)))
    assert "holds files that are not Needle's" in line and ".gitignore" in line
    assert (other / ".gitignore").read_text() == "build/\n"
    assert sorted(p.name for p in other.iterdir()) == [".gitignore", "src"]
    (other / ".gitignore").unlink()
    (other / ".git").mkdir()  # a work tree with no file at its top: still no index folder
    assert ".git" in _error(run_needle("index", "--index-dir", str(other), str(repo)))
    assert sorted(p.name for p in other.iterdir()) == [".git", "src"]


def test_another_programs_index_db_is_never_adopted_or_renamed(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-tool"
    other.mkdir()
    with closing(sqlite3.connect(other / "index.db")) as conn:
        conn.execute("CREATE TABLE documents (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO documents(body) VALUES ('precious')")
        conn.commit()
    before = (other / "index.db").read_bytes()
    for args in (["index", "--index-dir", str(other), str(repo)],
                 ["status", "--index-dir", str(other), str(repo)],
                 ["search", "--index-dir", str(other), "--path", str(repo), "anything"]):
        line = _error(run_needle(*args))
        assert "did not make" in line or "not a Needle index" in line, line
    assert (other / "index.db").read_bytes() == before
    assert sorted(p.name for p in other.iterdir()) == ["index.db"]


def test_an_empty_or_new_index_folder_outside_the_repo_works(repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "indexes" / "repo"
    proc = run_needle("index", "-q", "--index-dir", str(target), str(repo))
    assert proc.returncode == 0, proc.stderr
    assert (target / "index.db").exists() and (target / ".gitignore").read_text().endswith("*\n")
    assert run_needle("index", "-q", "--index-dir", str(target), str(repo)).returncode == 0  # and again


# -- secrets by content --------------------------------------------------------------------------------------
def test_private_keys_are_skipped_by_content_and_tokens_never_come_back(repo: Path) -> None:
    for name in ("deploy_key", "ssh_host_rsa_key", "kubeconfig", "client.ovpn", "token.json"):
        (repo / "ops").mkdir(exist_ok=True)
        (repo / "ops" / name).write_text(f"# {name}\n{KEY_BLOCK}")
    filler = "".join(f"def helper_{i}(x):\n    return x * {i}\n\n" for i in range(60))  # the key lies past 1 KiB
    (repo / "src" / "cloud.py").write_text(
        filler +
        "def upload_report_to_bucket(path):\n"
        f"    aws_access_key_id = \"{AWS_ID}\"\n"
        f"    aws_secret_access_key = \"{AWS_SECRET}\"\n"
        f"    github_token = \"{GITHUB}\"\n"
        f"    slack_token = \"{SLACK}\"\n"
        "    return send(path)\n"
        "\n"
        f"PEM = \"\"\"\n{KEY_BLOCK}\"\"\"\n")
    proc = run_needle("index", "--json", str(repo))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["skipped"]["secret"] >= 5

    proc = run_needle("search", "--json", "--path", str(repo), "-k", "50", "upload_report_to_bucket")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    upload = next(r for r in results if r["name"] == "upload_report_to_bucket")
    assert "[REDACTED aws-access-key-id]" in upload["snippet"]
    assert not [r for r in results if r["path"].startswith("ops/")]
    db = repo / ".needle" / "index.db"
    with closing(sqlite3.connect(db)) as conn:
        stored = "\n".join(r[0] for r in conn.execute("SELECT text FROM chunks"))
        fts = "\n".join(r[0] for r in conn.execute("SELECT body FROM chunks_fts"))
    for secret in (AWS_ID, AWS_SECRET, GITHUB, SLACK, "b3BlbnNzaC1rZXktdjEAAAAA"):
        assert secret not in stored and secret not in fts and secret not in proc.stdout
    assert "[REDACTED github-token]" in stored and "[REDACTED private key]" in stored


# -- a parent folder swapped for a symlink mid-index ---------------------------------------------------------
def test_a_parent_folder_swapped_for_a_symlink_mid_index_reads_nothing_outside(repo: Path, tmp_path: Path) -> None:
    """The walk lists deep/zz/*.py; while the first files are embedded, deep/ becomes a link to a folder outside
    the root holding files of the same names. Not one byte of them may be read."""
    outside = tmp_path / "outside"
    (outside / "zz").mkdir(parents=True)
    (repo / "deep" / "zz").mkdir(parents=True)
    # Many files ahead of deep/ in the walk: files are committed before any embedding (lexical first), so 40
    # went in well under a second and on a busy box a deep/ file could be read before the swap.
    for i in range(200):
        (repo / "aa" / f"m{i:03d}.py").parent.mkdir(exist_ok=True)
        (repo / "aa" / f"m{i:03d}.py").write_text(f"def inside_function_{i}(x):\n    return x + {i}\n")
    for i in range(20):
        (repo / "deep" / "zz" / f"f{i:02d}.py").write_text(f"def inside_deep_{i}():\n    return {i}\n")
        (outside / "zz" / f"f{i:02d}.py").write_text(f"def OUTSIDE_SECRET_{i}():\n    return 'leaked'\n")
    env = {**os.environ, "NEEDLE_BATCH_FILES": "1"}  # commit file by file: the swap lands mid-index
    proc = subprocess.Popen([str(NEEDLE), "index", "-q", str(repo)], env=env, stderr=subprocess.PIPE, text=True)
    db = repo / ".needle" / "index.db"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)) as conn:
                    if conn.execute("SELECT count(*) FROM files").fetchone()[0] >= 1:
                        break
            except sqlite3.Error:
                pass
            time.sleep(0.02)
        assert proc.poll() is None, "the index finished before the swap: the test proves nothing"
        shutil.rmtree(repo / "deep")
        (repo / "deep").symlink_to(outside, target_is_directory=True)
        assert proc.wait(timeout=300) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    with closing(sqlite3.connect(db)) as conn:
        texts = "\n".join(r[0] for r in conn.execute("SELECT text FROM chunks"))
        deep_files = conn.execute("SELECT count(*) FROM files WHERE path LIKE 'deep/%'").fetchone()[0]
        inside = conn.execute("SELECT count(*) FROM files WHERE path LIKE 'aa/%'").fetchone()[0]
        deep_texts = [r[0] for r in conn.execute("SELECT text FROM chunks WHERE path LIKE 'deep/%'")]
    assert "OUTSIDE_SECRET" not in texts and "leaked" not in texts
    assert inside == 200
    # A deep/ file read before the swap holds its own (inside) code; nothing read after it is in the index.
    assert deep_files < 20, "every deep/ file was read before the swap: the test proves nothing"
    assert all("inside_deep_" in t for t in deep_texts)


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("O_NOFOLLOW/dir_fd semantics checked on Linux")


def test_an_oversized_query_is_a_one_line_error(repo: Path) -> None:
    assert run_needle("index", "-q", str(repo)).returncode == 0
    line = _error(run_needle("search", "--no-refresh", "--path", str(repo), "x" * 5000))
    assert "query is too long (5000 characters, at most 4096)" in line


# -- an index folder that came with the repository -----------------------------------------------------------
def test_links_planted_in_a_repositorys_index_folder_are_never_written_through(repo: Path, tmp_path: Path) -> None:
    """git stores symbolic links, so a cloned repository may carry a `.needle/` whose files point elsewhere: a
    writer.pid linked to a file was truncated to a pid, the feedback log appended queries to another file, a
    dangling index.db had the whole index written where it pointed. Such a folder is refused, nothing written."""
    victims = tmp_path / "home"
    victims.mkdir()
    for name in ("bashrc", "notes"):
        (victims / name).write_text(f"the user's own {name}\n")
    assert run_needle("index", "-q", str(repo)).returncode == 0
    index = repo / ".needle"
    (index / "writer.pid").unlink()
    (index / "writer.pid").symlink_to(victims / "bashrc")
    (index / "feedback.jsonl").symlink_to(victims / "notes")
    (index / ".settings.json.tmp").symlink_to(victims / "notes")

    other = copy_fixture("minirepo", tmp_path / "other")
    (other / ".needle").mkdir()
    (other / ".needle" / "index.db").symlink_to(victims / "loot.db")  # dangling: SQLite would create it

    env = {**os.environ, "EDITOR": "true"}
    for args in (("search", "--path", str(repo), "parse"), ("search", "--path", str(repo), "--open", "1", "parse"),
                 ("index", "--exclude", "docs/**", str(repo)), ("search", "--path", str(other), "parse")):
        proc = run_needle(*args, env=env)
        assert proc.returncode == 1 and "holds symbolic links where Needle keeps its own files" in _error(proc)
    assert (victims / "bashrc").read_text() == "the user's own bashrc\n"
    assert (victims / "notes").read_text() == "the user's own notes\n"
    assert not (victims / "loot.db").exists()


def test_the_writer_pid_and_the_feedback_log_are_never_opened_through_a_link(tmp_path: Path) -> None:
    """The folder check runs when an index opens; the two files written in place refuse links by themselves."""
    from codeneedle.indexer.feedback import Shown, record_open
    from codeneedle.indexer.lock import WriterLock

    target = tmp_path / "target"
    target.write_text("kept\n")
    index = tmp_path / "index"
    index.mkdir()
    (index / "writer.pid").symlink_to(target)
    (index / "feedback.jsonl").symlink_to(target)
    lock = WriterLock(index)
    lock.acquire()
    lock.release()
    with pytest.raises(OSError):
        record_open(index, "parse a config file", Shown("a.py", 1, "parse"))
    assert target.read_text() == "kept\n"


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_model_the_index_record_places_inside_the_repository_is_loaded_only_as_plain_data(
        repo: Path, tmp_path: Path) -> None:
    """An index that came with a clone may name a model in its own models/ folder: one that is no BERT in
    safetensors went to transformers, which read its pytorch_model.bin (a pickle). It is not loaded; the search
    says so and runs on the default model."""
    import pickle

    assert run_needle("index", "-q", str(repo)).returncode == 0
    evil = repo / ".needle" / "models" / "evil"
    evil.mkdir(parents=True)
    shipped = Path(__file__).resolve().parents[1] / "codeneedle" / "models" / "needle-code-v3"
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(shipped / name, evil / name)
    marker = tmp_path / "unpickled"
    (evil / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    with closing(sqlite3.connect(repo / ".needle" / "index.db")) as conn, conn:
        conn.execute("UPDATE meta SET value = 'evil' WHERE key = 'model_name'")
    proc = run_needle("search", "--no-refresh", "--path", str(repo), "parse")
    assert proc.returncode == 0, proc.stderr
    assert f"names the model in {evil}" in proc.stderr and "not loaded" in proc.stderr
    assert not marker.exists()


def test_the_index_folder_is_readable_by_its_owner_only(repo: Path, tmp_path: Path) -> None:
    """The index copies every indexed file's text: a file the user made private (0600) was readable by everyone
    in .needle/index.db under the usual umask. A folder the user made for --index-dir keeps its mode."""
    (repo / "src" / "local_settings.py").write_text("def staging_login():\n    return 'PRIVATE_NOTE'\n")
    (repo / "src" / "local_settings.py").chmod(0o600)
    own = tmp_path / "shared-indexes"
    own.mkdir(mode=0o755)
    old = os.umask(0o022)
    try:
        assert run_needle("index", "-q", str(repo)).returncode == 0
        assert run_needle("index", "-q", "--index-dir", str(own), str(repo)).returncode == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((repo / ".needle").stat().st_mode) == 0o700
    assert stat.S_IMODE(own.stat().st_mode) == 0o755


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_an_index_folder_git_tracks_is_refused_before_it_takes_a_copy_of_untracked_files(repo: Path) -> None:
    """Our .gitignore keeps a new index out of git, not one the repository already tracks: `git commit -a` then
    carried index.db, with the text of a file never added to git, into the history."""
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    assert run_needle("index", "-q", str(repo)).returncode == 0
    subprocess.run([*git, "add", "-f", ".needle/index.db"], check=True)
    subprocess.run([*git, "commit", "-qm", "an index came with the clone"], check=True)
    (repo / "notes_local.py").write_text("def staging_login():\n    return 'LOCAL_ONLY_NOTE'\n")
    proc = run_needle("search", "--path", str(repo), "staging login")
    assert "is tracked by git" in _error(proc) and "rm -r --cached .needle" in _error(proc)
    subprocess.run([*git, "commit", "-qam", "work"], check=False)
    shown = subprocess.run([*git, "show", "HEAD:.needle/index.db"], capture_output=True, check=True).stdout
    assert b"LOCAL_ONLY_NOTE" not in shown


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_an_index_folder_whose_tracked_files_hold_no_code_is_used(repo: Path) -> None:
    """A team may track the folder's settings.json (shared excludes): that carries no code, so it is no reason to
    refuse the folder; the store beside it is another matter."""
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    assert run_needle("index", "-q", "--exclude", "docs/**", str(repo)).returncode == 0
    assert (repo / ".needle" / "settings.json").is_file()
    subprocess.run([*git, "add", "-f", ".needle/settings.json"], check=True)
    subprocess.run([*git, "commit", "-qm", "shared excludes"], check=True)
    assert run_needle("search", "--path", str(repo), "parse a config file").returncode == 0
    (repo / ".needle" / "models").mkdir(exist_ok=True)
    (repo / ".needle" / "models" / "note.txt").write_text("trained here\n")
    subprocess.run([*git, "add", "-f", ".needle/models/note.txt"], check=True)
    proc = run_needle("search", "--path", str(repo), "parse a config file")
    assert "is tracked by git" in _error(proc)


@pytest.mark.slow  # the real command, twice
def test_open_never_hands_the_editor_a_file_outside_the_repository(repo: Path, tmp_path: Path) -> None:
    """A result whose file was swapped for a link out of the repository since it was indexed (searched with
    --no-refresh, or an index that came with a clone): --open refused nothing and handed $EDITOR the outside file,
    and the feedback log recorded it."""
    assert run_needle("index", "-q", str(repo)).returncode == 0
    private = tmp_path / "private.py"
    private.write_text("def mine():\n    return 'PRIVATE'\n")
    loader = repo / "src" / "config" / "loader.py"
    loader.unlink()
    loader.symlink_to(private)
    opened = tmp_path / "opened"
    editor = f"{sys.executable} -c \"import sys; open({str(opened)!r}, 'w').write(sys.argv[-1])\""
    proc = run_needle("search", "--path", str(repo), "--no-refresh", "load a json config file", "--open", "1",
                      env={"EDITOR": editor, "VISUAL": editor})
    assert "lies outside" in _error(proc) and "src/config/loader.py" in _error(proc)
    assert not opened.exists()
    assert not (repo / ".needle" / "feedback.jsonl").exists()
