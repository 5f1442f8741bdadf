"""Keyword search for text written without spaces between words: Chinese, Japanese and Korean.

FTS5's ``unicode61`` tokenizer splits words at spaces and punctuation, so a Chinese doc comment such as
``读取配置文件并返回字典`` is one token and a search for ``配置文件`` matched nothing in it. Each such run is
indexed again as overlapping pairs of characters (``读取 取配 配置 ...``, the bigrams Lucene's CJK analyzer uses),
and a query's run becomes the phrase of its pairs, which holds wherever the run appears in the text, plus each
pair on its own, for text that says the same in other order or with words between.
"""

from __future__ import annotations

import re

# Han (with its extensions and compatibility forms), kana (half-width too) and Hangul syllables.
CHARS = ("\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
         "\U00020000-\U0002fa1f")
RUN = re.compile(f"[{CHARS}]+")


def has_cjk(text: str) -> bool:
    return RUN.search(text) is not None


def bigrams(run: str) -> list[str]:
    """``配置文件`` -> ``配置 置文 文件``; a single character is its own term."""
    return [run[i : i + 2] for i in range(len(run) - 1)] or [run]


def index_terms(text: str) -> str:
    """The pairs of every run of two characters or more in ``text``, a line per run (empty when none)."""
    return "\n".join(" ".join(bigrams(run)) for run in RUN.findall(text) if len(run) > 1)


def query_clauses(word: str) -> list[str]:
    """FTS5 clauses (already quoted) for one query word: its runs' pair phrases and pairs, and its other parts as
    plain terms. ``读取config文件`` -> the run ``读取``, the word ``config`` and the run ``文件``."""
    clauses: list[str] = []
    rest = RUN.split(word)
    for part in rest:
        if part.strip("_"):
            clauses.append(_quoted(part))
    for run in RUN.findall(word):
        pairs = bigrams(run)
        if len(run) == 1:
            clauses.append(_quoted(run) + "*")  # the first character of the indexed pairs that start with it
            continue
        if len(pairs) > 1:
            clauses.append(_quoted(" ".join(pairs)))
        clauses.extend(_quoted(p) for p in pairs)
    return list(dict.fromkeys(clauses))


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def holds(query: str, *texts: str) -> bool:
    """Whether ``texts`` hold every run of two characters or more of the query (none: False)."""
    runs = [run for run in RUN.findall(query) if len(run) > 1]
    return bool(runs) and all(any(run in text for text in texts) for run in runs)
