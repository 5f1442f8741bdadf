"""Code documented in Chinese, Japanese, Korean, Russian or another language written in its own alphabet is found by
the words of its doc comments: keyword search had read only ASCII words, and a run of Chinese text was one token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codeneedle.indexer import cjk
from codeneedle.indexer.index import Index
from codeneedle.indexer.search import (
    CJK_LEXICAL_WEIGHT,
    IDENTIFIER_LEXICAL_WEIGHT,
    OTHER_SCRIPT_LEXICAL_WEIGHT,
    lexical_weight,
)
from codeneedle.indexer.store import fts_match
from tests.conftest import run_needle

SOURCES = {
    "settings.py": '''
def load_settings(path):
    """读取配置文件并返回字典。"""
    with open(path) as f:
        return dict(line.split("=", 1) for line in f)


def send_mail(to, body):
    """发送电子邮件给用户。"""
    print(to, body)
''',
    "archive.py": '''
def compress(data):
    """データを圧縮して保存する。"""
    return data[::2]


def list_users(db):
    """사용자 목록을 불러온다."""
    return db.all()
''',
    "sizes.py": '''
def file_extent(path):
    # Größe der Datei in Bytes
    return len(open(path, "rb").read())


def parse_day(text):
    # Разбирает дату из строки
    return text.split("-")
''',
    "helpers.py": "".join(f'def helper_{i}(x):\n    """Return x plus {i}."""\n    return x + {i}\n\n\n' for i in range(12)),
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cjk") / "repo"
    root.mkdir()
    for name, text in SOURCES.items():
        (root / name).write_text(text.lstrip(), encoding="utf-8")
    proc = run_needle("index", "--quiet", str(root))
    assert proc.returncode == 0, proc.stderr
    return root


def _search(repo: Path, query: str) -> dict:
    proc = run_needle("search", query, str(repo), "--json", "-k", "5")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow
@pytest.mark.parametrize(("query", "name"), [
    ("配置文件", "load_settings"),  # inside a longer run of Chinese: 读取配置文件并返回字典
    ("读取配置文件并返回字典", "load_settings"),
    ("发送 电子邮件", "send_mail"),  # two words of the run, as a user may type them
    ("圧縮", "compress"),  # Japanese
    ("사용자 목록", "list_users"),  # Korean: 목록을 is 목록 with its particle
])
def test_a_phrase_of_a_chinese_japanese_or_korean_doc_comment_finds_its_function_first(repo, query, name):
    found = _search(repo, query)
    top = found["results"][0]
    assert top["name"] == name, [r["name"] for r in found["results"]]
    # The encoder reads these scripts poorly (cosines around 0.3): the words, found as typed, make it a match.
    assert top["verbatim"] is True and found["good_match"] is True


@pytest.mark.slow
def test_chinese_words_found_nowhere_are_still_no_good_match(repo):
    proc = run_needle("search", "天气预报", str(repo), "-k", "3")
    assert proc.returncode == 0, proc.stderr
    assert "no good match" in proc.stderr
    assert not any(r.get("verbatim") for r in _search(repo, "天气预报")["results"])


@pytest.mark.slow
def test_words_with_accents_or_in_cyrillic_reach_keyword_search(repo):
    # The ASCII-only pattern cut "Größe" into "gr" and "e" and dropped Cyrillic words altogether.
    with Index.open(repo) as index:
        store = index.reader()
        for word, name in (("Größe", "file_extent"), ("дату", "parse_day"), ("строки", "parse_day")):
            ids = store.fts_search(word, 5)
            assert ids and store.chunks_by_ids(ids[:1])[ids[0]].name == name, word


def test_ascii_queries_ask_keyword_search_what_they_asked_before():
    assert fts_match("how to parse an HTTPResponse in python") == '"parse" OR "http" OR "response"'
    assert fts_match("naïve größe") == '"naïve" OR "größe"'
    assert fts_match("读取config文件") == '"config" OR "读取" OR "文件"'
    assert fts_match("配置文件") == '"配置 置文 文件" OR "配置" OR "置文" OR "文件"'
    assert fts_match("和") == '"和"*'
    assert fts_match("?!") == ""


def test_runs_of_cjk_text_are_indexed_by_their_pairs_of_characters():
    assert cjk.index_terms("读取配置文件。Return 字典") == "读取 取配 配置 置文 文件\n字典"
    assert cjk.index_terms("plain ascii, ä ö") == ""
    assert cjk.holds("配置 文件", "读取配置文件") and not cjk.holds("配置 天气", "读取配置文件")
    assert not cjk.holds("和", "和")  # a single character says too little to call a result a match


def test_a_query_the_encoder_reads_poorly_is_ranked_by_its_words():
    # English keeps its weights: none for a short question in words, full for an identifier.
    assert lexical_weight("read a config file") == 0.0 and lexical_weight("parse_config") == IDENTIFIER_LEXICAL_WEIGHT
    assert lexical_weight("读取配置文件") == lexical_weight("発送 する") == CJK_LEXICAL_WEIGHT
    assert lexical_weight("Получить список аудиозаписей") == OTHER_SCRIPT_LEXICAL_WEIGHT
    assert lexical_weight("Λίστα χρηστών") == OTHER_SCRIPT_LEXICAL_WEIGHT > IDENTIFIER_LEXICAL_WEIGHT
    assert lexical_weight("größe der Datei") == 0.0  # a Latin alphabet: the encoder's own
    # A word or two of another script in an English query leave it English; half the query makes it foreign.
    assert lexical_weight("mean μ of samples") == 0.0
    assert lexical_weight("Устанавливает pos_link_data модели CreatePosLinkRequest.") == OTHER_SCRIPT_LEXICAL_WEIGHT


@pytest.mark.slow
def test_no_second_stage_reorders_what_the_words_of_a_foreign_query_found(repo):
    """Late interaction and the cross-encoder read a query with the encoder's English: "订单 总额" (two words, so a
    typed question) went to late interaction, which moved the words' own match from first to third."""
    with Index.open(repo) as index:
        assert index._second_stage_for("发送 电子邮件", None) == (None, False)
        assert index._second_stage_for("Получить список пользователей", None) == (None, False)
        reranker, late = index._second_stage_for("send an email to a user", None)
        assert late or reranker is not None



@pytest.mark.slow
def test_a_hit_holding_the_chinese_words_leads_a_search_of_several_repositories(tmp_path):
    """Each repository ranks such a hit first by its words; merged by cosine alone, another repository's unrelated
    code (0.21 against 0.16) came first, and with -k 1 the hit was gone."""
    orders, other = tmp_path / "orders", tmp_path / "other"
    orders.mkdir(), other.mkdir()
    (orders / "totals.sql").write_text("-- 计算每个客户的订单总额\n"
                                       "SELECT customer_id, SUM(amount) FROM orders GROUP BY customer_id;\n")
    (other / "rocket.ps1").write_text("# Send a 🚀 rocket notification\nfunction Send-Rocket { Write-Host '🚀' }\n")
    (other / "temp.ps1").write_text("# Remove the temporary folder\nfunction Remove-Temp {\n"
                                    "    Remove-Item $env:TEMP -Recurse\n}\n")
    for root in (orders, other):
        assert run_needle("index", "--quiet", str(root)).returncode == 0
    proc = run_needle("search", "订单总额", "--path", str(other), "--path", str(orders), "--json", "-k", "1")
    assert proc.returncode == 0, proc.stderr
    (top,) = json.loads(proc.stdout)["results"]
    assert (top["path"], top["verbatim"]) == ("totals.sql", True)
