"""Which packages the shipped encoder was trained on, and which repositories the quality benchmark searches.

One module holds both lists so that ``tests/test_repos.py`` can fail when they overlap: a benchmark repository
the encoder has seen measures memory, not search. ``training_packages()`` reads the shipped model's
``training_manifest.json`` (every package fetched for training, including the few held out of the training pairs:
they are excluded from the benchmark all the same). ``BENCHMARK_REPOS`` pins each benchmark repository's exact
version and how to fetch it from a registry, and splits them into ``dev`` (tune ranking weights on these) and
``test`` (report on these, never tune).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from codeneedle.training import corpus

MANIFEST = Path(__file__).resolve().parent.parent / "models" / "needle-code-v3" / "training_manifest.json"


@dataclass(frozen=True, slots=True)
class BenchRepo:
    """One benchmark repository, fetched exactly as its registry ships it (tests, stubs, docs and all).

    ``fetch`` is ``pypi`` (the sdist: ``pip download --no-binary :all: --no-deps name==version``), ``npm``
    (``npm pack name@version``) or ``debian`` (``apt-get download name=version``, a ``golang-*-dev`` or
    ``librust-*-dev`` package whose files are the library's source tree). ``language`` is the language whose
    documented functions become queries; the whole repository is indexed and searched.
    """

    name: str
    language: str
    version: str
    fetch: str
    split: str  # "dev" | "test"
    package: str = ""  # the registry's name when it differs from ``name``
    doc_language: str = "en"  # the human language its doc comments are written in

    @property
    def registry_name(self) -> str:
        return self.package or self.name


# Small to medium repositories (a few hundred to ~1,500 chunks) so the whole benchmark indexes in minutes on
# two CPU cores. None of them (nor any package of the same name in any registry: the Rust crate `semver` was
# dropped because npm's `semver` was trained on) is in the training manifest.
BENCHMARK_REPOS: tuple[BenchRepo, ...] = (
    BenchRepo("glom", "python", "25.12.0", "pypi", "test"),
    BenchRepo("tinydb", "python", "4.9.0", "pypi", "test"),
    BenchRepo("jmespath", "python", "1.1.0", "pypi", "dev"),
    BenchRepo("pathspec", "python", "1.1.1", "pypi", "dev"),
    BenchRepo("funcy", "python", "2.1", "pypi", "dev"),
    BenchRepo("intervaltree", "python", "3.2.1", "pypi", "dev"),
    BenchRepo("source-map", "javascript", "0.6.1", "npm", "test"),
    BenchRepo("xmldom", "javascript", "0.9.12", "npm", "test", package="@xmldom/xmldom"),
    BenchRepo("graphlib", "javascript", "2.1.8", "npm", "dev"),
    BenchRepo("simple-statistics", "javascript", "7.12.1", "npm", "dev"),
    BenchRepo("proj4", "javascript", "2.22.0", "npm", "dev"),
    BenchRepo("immer", "typescript", "11.2.14", "npm", "test"),
    BenchRepo("tanstack-virtual-core", "typescript", "3.19.13", "npm", "test", package="@tanstack/virtual-core"),
    BenchRepo("tanstack-query-core", "typescript", "5.108.4", "npm", "dev", package="@tanstack/query-core"),
    BenchRepo("trpc-server", "typescript", "11.25.2", "npm", "dev", package="@trpc/server"),
    BenchRepo("gorilla-mux", "go", "1.8.0-1", "debian", "test", package="golang-github-gorilla-mux-dev"),
    BenchRepo("go-cmp", "go", "0.5.9-1", "debian", "test", package="golang-github-google-go-cmp-dev"),
    BenchRepo("pflag", "go", "1.0.6~git20210604-d5e0c0615ace-1", "debian", "dev",
              package="golang-github-spf13-pflag-dev"),
    BenchRepo("indexmap", "rust", "1.9.2-1", "debian", "test", package="librust-indexmap-dev"),
    BenchRepo("smallvec", "rust", "1.9.0-1", "debian", "test", package="librust-smallvec-dev"),
    BenchRepo("either", "rust", "1.6.1-1", "debian", "dev", package="librust-either-dev"),
    BenchRepo("arrayvec", "rust", "0.7.2-2", "debian", "dev", package="librust-arrayvec-dev"),
    BenchRepo("bytes", "rust", "1.2.1-1", "debian", "dev", package="librust-bytes-dev"),
    BenchRepo("cordova-android", "java", "15.1.0", "npm", "test"),
    BenchRepo("capacitor-android", "java", "8.6.0", "npm", "test", package="@capacitor/android"),
    BenchRepo("cordova-plugin-file", "java", "8.1.3", "npm", "dev"),
    BenchRepo("cordova-plugin-camera", "java", "8.0.0", "npm", "dev"),
)

# Repositories documented in other human languages than English, for keyword search in other scripts
# (bench/non_english.py; the encoder, trained on English, reads them poorly). None is in the training manifest.
NON_ENGLISH_REPOS: tuple[BenchRepo, ...] = (
    BenchRepo("wechatpy", "python", "1.8.18", "pypi", "test", doc_language="zh"),
    BenchRepo("pypinyin", "python", "0.55.0", "pypi", "test", doc_language="zh"),
    BenchRepo("vk_api", "python", "11.10.1", "pypi", "test", doc_language="ru"),
    BenchRepo("yookassa", "python", "3.13.0", "pypi", "test", doc_language="ru"),
)


def training_packages(manifest: Path = MANIFEST) -> frozenset[tuple[str, str]]:
    """(ecosystem, normalised name) of every package fetched for the shipped encoder's training and its query tower's."""
    data = json.loads(manifest.read_text())
    packages = data["packages"] + data.get("query_tower_packages", [])  # the tower's later stages saw more
    return frozenset((p["ecosystem"], normalise(p["name"])) for p in packages)


def normalise(name: str) -> str:
    """Registry-insensitive project name: ``@xmldom/xmldom`` -> ``xmldom``, ``JPype1`` -> ``jpype1``,
    ``golang-github-gorilla-mux-dev`` -> ``gorilla-mux``, ``librust-semver-dev`` -> ``semver``."""
    name = name.lower().rsplit("/", 1)[-1]
    name = re.sub(r"^golang-(github|gitlab|golang)-[^-]+-", "", name)
    name = re.sub(r"^librust-", "", name)
    name = re.sub(r"-dev$", "", name)
    return re.sub(r"[-_.]+", "-", name)


def corpus_packages() -> frozenset[tuple[str, str]]:
    """(ecosystem, normalised name) of every package the training corpus fetches (``codeneedle.training.corpus``):
    what later training (a query tower's stage, a retrained model) may see beyond the shipped manifest."""
    lists = (("pypi", corpus.PYPI_TRAIN + corpus.PYPI_HELDOUT), ("npm", corpus.NPM_TRAIN + corpus.NPM_HELDOUT),
             ("debian", corpus.DEBIAN_TRAIN))
    return frozenset((eco, normalise(name)) for eco, names in lists for name in names)


def overlap(repos: tuple[BenchRepo, ...] = BENCHMARK_REPOS, manifest: Path = MANIFEST) -> list[str]:
    """Benchmark repositories whose project (by either of its names) the training manifest or the corpus lists
    contain."""
    seen = {name for _eco, name in training_packages(manifest) | corpus_packages()}
    return [r.name for r in repos if {normalise(r.name), normalise(r.registry_name)} & seen]


def split(name: str) -> tuple[BenchRepo, ...]:
    """The benchmark repositories of one split: ``dev``, ``test`` or ``all``."""
    return tuple(r for r in BENCHMARK_REPOS if name in ("all", r.split))
