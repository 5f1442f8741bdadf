"""Which words of a sentence a function's name uses (codeneedle.indexer.name_words), and the boost the ranking rules
give a function so named (ranking.QueryRules.name_boost)."""

from __future__ import annotations

from codeneedle.indexer.name_words import name_overlap, name_parts, query_words
from codeneedle.indexer.ranking import WEIGHTS, QueryRules
from codeneedle.indexer.store import ChunkRow

LITTLE_ENDIAN = "Writes an unsigned 64 bit integer to `self` in little-endian byte order."


def test_a_name_is_its_own_words_without_its_class():
    assert name_parts("BufMut.put_u64_le") == ("put", "u64", "le")
    assert name_parts("Session.getUserById") == ("get", "user", "by", "id")
    assert name_parts("") == ()


def test_words_abbreviations_and_sizes_of_a_sentence_count():
    words = query_words(LITTLE_ENDIAN)
    assert name_overlap("BufMut.put_u64_le", words) == 2 / 3  # u64 and le ("little"); not put
    assert name_overlap("write_u64", words) == 1.0  # "write" abbreviates "writes" by its start
    assert name_overlap("put_i64", words) == 0.0  # an unsigned integer was asked for
    assert name_overlap("put_u32", words) == 0.0  # of another size
    # The class is context: only the method's own name counts.
    assert name_overlap("Writer.into_inner", query_words("Consumes this writer, returning the inner value.")) == 0.5
    assert name_overlap("BytesMut.len", query_words("Returns the length of the buffer.")) == 1.0
    assert name_overlap("ctx", query_words("The request context.")) == 1.0
    assert name_overlap("get_i32", query_words("Gets a signed 32 bit integer.")) == 1.0
    assert name_overlap("frobnicate", words) == 0.0


def test_only_sentences_lift_functions_named_in_their_words():
    fn = ChunkRow(1, "src/buf.rs", "rust", "method", "BufMut.put_u64_le", 1, 3, 0, 9, "fn put_u64_le() {}", "", "h")
    assert QueryRules.of(LITTLE_ENDIAN).name_boost(fn) == 1 + WEIGHTS.name_words * 2 / 3
    # A typed question keeps the first stage's order: on CoSQA its words name many functions, one of them right.
    assert QueryRules.of("write unsigned 64 bit integer little endian").name_boost(fn) == 1.0
    assert QueryRules.of("put_u64_le").name_boost(fn) == 1.0  # a name query has the name tiers
    cls = ChunkRow(2, "src/buf.rs", "rust", "class", "PutU64Le", 1, 3, 0, 9, "struct PutU64Le;", "", "h")
    assert QueryRules.of(LITTLE_ENDIAN).name_boost(cls) == 1.0
