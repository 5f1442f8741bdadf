"""The quality benchmark never searches a repository the shipped encoder was trained on."""

from codeneedle.training import repos


def test_no_benchmark_repository_is_in_the_training_manifest():
    assert repos.overlap() == []
    assert repos.overlap(repos=repos.NON_ENGLISH_REPOS) == []


def test_the_corpus_lists_count_as_training_data():
    # The query tower's later stages train on packages the encoder's manifest predates (Rust crates).
    assert ("debian", "tinyvec") in repos.corpus_packages()
    assert ("debian", "tinyvec") in repos.training_packages()  # the shipped manifest lists what the tower saw
    assert repos.overlap(repos=(repos.BenchRepo("tinyvec", "rust", "1.6.0-2", "debian", "test",
                                                package="librust-tinyvec-dev"),)) == ["tinyvec"]


def test_overlap_is_detected_across_registry_spellings(tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"packages": [{"ecosystem": "pypi", "name": "TinyDB"},'
                        ' {"ecosystem": "debian", "name": "golang-github-google-go-cmp-dev"}]}')
    assert repos.overlap(manifest=manifest) == ["tinydb", "go-cmp"]


def test_every_language_has_two_test_repositories_and_a_dev_split():
    test = repos.split("test")
    for language in ("python", "javascript", "typescript", "go", "rust", "java"):
        assert sum(r.language == language for r in test) >= 2, language
    assert repos.split("dev") and not set(repos.split("dev")) & set(test)
    assert len({r.name for r in repos.BENCHMARK_REPOS}) == len(repos.BENCHMARK_REPOS)
