"""`scripts/build_training_set.py fetch` against the real Debian archive: a pinned version Debian no longer has
falls back to the current one, and the manifest says which was asked for."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "build_training_set.py"


def load_script():
    spec = importlib.util.spec_from_file_location("build_training_set", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def debian_reachable() -> bool:
    if not shutil.which("apt-get"):
        return False
    probe = subprocess.run(["apt-cache", "policy", "hostname"], capture_output=True, text=True)
    return "Candidate:" in probe.stdout and "(none)" not in probe.stdout.split("Candidate:", 1)[1].split("\n", 1)[0]


@pytest.mark.skipif(not debian_reachable(), reason="needs apt-get and Debian's package lists")
def test_a_pinned_debian_version_that_is_gone_falls_back_to_the_current_one(tmp_path):
    script = load_script()
    entry = script.fetch_debian("hostname", "0.0.1-gone", tmp_path / "downloads", tmp_path / "src")
    assert "error" not in entry, entry
    assert entry["pinned"] == "0.0.1-gone" and entry["version"] != "0.0.1-gone"
    assert (tmp_path / "src" / "debian" / "hostname" / "bin" / "hostname").is_file()  # extracted, not installed
    again = script.fetch_debian("hostname", entry["version"], tmp_path / "downloads2", tmp_path / "src2")
    assert again["version"] == entry["version"] and "pinned" not in again


@pytest.mark.skipif(not debian_reachable(), reason="needs apt-get and Debian's package lists")
def test_a_package_debian_does_not_have_is_an_error_in_the_manifest_not_a_crash(tmp_path):
    entry = load_script().fetch_debian("no-such-package-needle", None, tmp_path / "downloads", tmp_path / "src")
    assert entry["name"] == "no-such-package-needle" and "version" not in entry and entry["error"]
