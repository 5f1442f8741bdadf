"""The linear-time glob automaton means exactly what the regex translation means, on any pattern and path."""

from __future__ import annotations

import random
import re

import pytest

from codeneedle.indexer.ignore import glob_match
from codeneedle.indexer.wildmatch import Automaton, to_regex, tokenize

TOKENS = ["a", "b", "d", "/", "*", "?", "**", "**/", "/**", "[ab]", "[!a]", "[a-c]", "[[:digit:]]", "\\*", "\\?"]
ALPHABET = ["a", "b", "c", "d", "/", "*", "?", "1"]


@pytest.mark.parametrize("seed", range(3))
def test_the_automaton_agrees_with_the_regex_on_random_patterns_and_paths(seed: int) -> None:
    rng = random.Random(seed)
    checked = 0
    for _ in range(1500):
        pattern = "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 6)))
        for anchored in (False, True):
            tokens = tokenize(pattern, anchored)
            if tokens is None:
                continue
            regex, automaton = re.compile(to_regex(tokens), re.DOTALL), Automaton(tokens)
            for _ in range(12):
                path = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 8)))
                assert automaton.fullmatch(path) == bool(regex.fullmatch(path)), (pattern, anchored, path)
                checked += 1
    assert checked > 20_000


@pytest.mark.timeout(60)  # a hang guard: the regex engine never returned on these
def test_patterns_that_blow_up_a_backtracking_regex_are_answered() -> None:
    name = "a" * 30 + "Q" + "a" * 9 + ".py"
    deep = "/".join(["dir"] * 500) + "/" + name
    assert not glob_match("*?" * 12 + "Q", deep)
    assert glob_match("*?" * 12 + "Q", deep[:-3] + "Q")
    assert not glob_match("**/" * 40 + "*a*a*a*a*a*a*a*a*a*a*a*a*b", deep)
    assert glob_match("**/*a*a*a*a*a*a*a*a*a*a*a*a*.py", deep)
