"""Search globs as people write them: gitignore-style, from the repository root, with ripgrep's braces."""

from __future__ import annotations

import pytest

from codeneedle.errors import NeedleError
from codeneedle.indexer.filters import expand_braces, path_allowed, split_globs


def allowed(path: str, *globs: str) -> bool:
    include, exclude = split_globs(list(globs))
    return path_allowed(path, include, exclude)


def test_a_leading_dot_slash_anchors_at_the_root_as_a_leading_slash_does():
    assert allowed("a.py", "./*.py") and not allowed("x/a.py", "./*.py")
    assert allowed("x/dist/a.js", "!./dist") and not allowed("dist/a.js", "!./dist")
    assert allowed("web/a.ts", "./web/**") == allowed("web/a.ts", "web/**") is True


@pytest.mark.parametrize(("glob", "alternatives"), [
    ("**/*.{ts,tsx}", ("**/*.ts", "**/*.tsx")),
    ("{src,lib}/{a,b}.py", ("src/a.py", "src/b.py", "lib/a.py", "lib/b.py")),
    ("{a,}", ("a",)),  # an empty alternative adds nothing
    ("{!a,b}", ("\\!a", "b")),  # a file named "!a", not "everything but a"
    ("x{y}z", ("x{y}z",)),  # no comma: not alternatives
])
def test_braces_are_alternatives(glob, alternatives):
    assert set(expand_braces(glob)) == set(alternatives)


def test_braces_filter_includes_and_exclusions():
    assert allowed("web/a.tsx", "**/*.{ts,tsx}") and not allowed("web/a.js", "**/*.{ts,tsx}")
    assert not allowed("src/a.py", "!{src,lib}/**") and allowed("docs/a.md", "!{src,lib}/**")
    assert not allowed("c/z.py", "{!a,b}")


@pytest.mark.parametrize(("glob", "message"), [
    ("src\\net\\*.py", "use '/' between folders"),
    ("{a,b}" * 7, "more than 64 patterns"),
    ("[", "the '\\[' at character 1 is never closed"),  # git's wildmatch matches nothing then: no silent []
    ("src/[!]x", "the '\\[' at character 5 is never closed"),
    # Counted in the alternative of the braces that holds it, which is named (in the glob it is character 9).
    ("src/{a,b[}.py", "the '\\[' at character 6 of 'src/b\\[.py' is never closed"),
])
def test_bad_globs_are_one_line_errors(glob, message):
    with pytest.raises(NeedleError, match=message):
        split_globs(glob)


def test_closed_classes_and_a_literal_bracket_are_globs():
    assert allowed("src/a1.py", "src/a[0-9].py") and allowed("x]y", "x[]]y") and allowed("a[b", "a[[]b")
    assert allowed("c.py", "[!]ab].py") and not allowed("a.py", "[!]ab].py")
