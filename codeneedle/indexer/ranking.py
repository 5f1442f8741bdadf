"""Ranking rules applied after fusion: put the code a person means first.

Fusion (dense + BM25) knows how similar a chunk is to the query, not what kind of chunk it is. These rules
re-order the fused candidates (they never change a result's displayed ``score``):

- a chunk that *defines* the identifier the query names (exact, or case/separator-insensitive) comes first,
  even when neither ranking found it (it is looked up by name); references to it stay where fusion put them;
  so does a function a longer query mentions in passing (``NFlag returns the number of flags``, ``where
  does loadConfig read the file``): camelCase, inner capitals or snake_case mark a word as code, and a
  ``{@link other}`` cross-reference names another function, not the one described;
- stubs and declarations (``.pyi``, ``.d.ts``, C/C++ headers, bodiless signatures) rank below implementations
  (and, after the second stage, ``declarations.py`` puts an implementation right above its stub);
- module-level ``block`` windows and ``text`` windows rank below named definitions;
- tests and benchmarks rank below the code they exercise, unless the query mentions tests or benchmarks;
- methods of a class the query mentions (``Clears the `IndexSet` ...``) rank a little higher;
- for a sentence (not a typed question), functions whose names are in its words, abbreviations included, rank a
  little higher (``put_u64_le`` for "Writes an unsigned 64 bit integer ... in little-endian byte order").

The demotions multiply the fused score, so a demoted chunk still wins when it is much the best match (or the
only one). Factors are tuned on the benchmark's dev repositories and CoSQA dev (``bench/quality.py --split
dev``), never on test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from codeneedle.indexer.chunks import BLOCK, CLASS, FUNCTION, JS_LANGUAGES, METHOD, TEXT
from codeneedle.indexer.name_words import MAX_NAME, name_overlap, query_words
from codeneedle.indexer.store import ChunkRow, Store

_DEFINITIONS = frozenset({FUNCTION, METHOD, CLASS})
_STUB_SUFFIXES = (".pyi", ".d.ts", ".d.mts", ".d.cts", ".mli", ".fsi")
_HEADER_SUFFIXES = (".h", ".hh", ".hpp", ".hxx", ".cuh")
_TEST_PATH = re.compile(
    r"(^|/)(tests?|__tests__|__mocks__|specs?|testing|testdata|test_?utils?)/"
    r"|(^|/)(test_[^/]*|[^/]*_tests?)\.py$|(^|/)conftest\.py$|_test\.go$"
    r"|\.(test|spec)\.[cm]?[jt]sx?$|(^|/)[^/]*Tests?\.(java|kt|cs|php|swift|scala)$|(^|/)src/test/"
    # Swift packages' Tests/, .NET test projects (Shop.Tests/), Scala and Kotest specs, busted's *_spec.lua
    r"|(^|/)Tests/|(^|/)[\w.]+\.Tests?/|(^|/)[^/]*(Spec|Suite)\.(scala|kt)$|_spec\.lua$|(^|/)test_[^/]*\.sh$"
    # Dart's and ExUnit's *_test files, XCTest's FooTests.m
    r"|_test\.(dart|exs)$|(^|/)[^/]*Tests?\.mm?$"
    # hspec's FooSpec.hs, Perl's t/*.t, OCaml's test_*.ml (Julia's are under test/)
    r"|(^|/)[^/]*Spec\.hs$|\.t$|(^|/)test_[^/]*\.ml$"
    # Terraform's *.tftest.hcl, Foundry's *.t.sol, Pester's *.Tests.ps1, F# FooTests.fs, MATLAB's test_*.m,
    # pFUnit-style test_*.f90, gtest's *_test.cu
    r"|\.tftest\.hcl$|\.t\.sol$|\.Tests\.ps1$|(^|/)[^/]*Tests?\.fsx?$|(^|/)test_[^/]*\.(m|f90|cu)$|_test\.cu$"
    # Benchmarks exercise the library like tests do, and often carry copies of its code (pathspec, dev split).
    r"|(^|/)(benchmarks?|benches)/"
)
_TEST_NAME = re.compile(r"(test|Test)([A-Z0-9_]|$)")
# Tests that live beside the code (Rust's #[test] in lib.rs, Java's @Test, pytest fixtures), known by the
# attribute or annotation the chunk starts with.
_TEST_ATTRIBUTE = re.compile(r"#\[(\w+::)*(test|rstest|test_case|wasm_bindgen_test)\b|#\[bench\]|#\[cfg\(test\)\]"
                             r"|@([\w.]+\.)?(Test|ParameterizedTest|RepeatedTest)\b|@pytest\."
                             # C# xUnit / NUnit / MSTest, PHPUnit 10
                             r"|\[(Fact|Theory|Test|TestCase|TestCaseSource|TestMethod|DataTestMethod|TestFixture"
                             r"|TestClass)\b|#\[\\?(\w+\\)*Test\b")
_TEST_HOOKS = frozenset({"it", "describe", "beforeEach", "afterEach", "setUp", "tearDown"})
_MENTIONS_TEST = re.compile(
    r"\b(tests?|testing|unit ?tests?|specs?|fixtures?|mocks?|bench(mark(s|ing)?|es)?)\b|test_|(?-i:Test[A-Z])", re.I)
_IDENT_QUERY = re.compile(r"^[A-Za-z_$][\w$]*(?:(?:\.|::|#)[A-Za-z_$][\w$]*)*(?:\(\))?$")
# An Objective-C selector, as its methods are named: initWithItems:repeat:, PlaybackQueue.initWithItems:repeat:
_SELECTOR_QUERY = re.compile(r"^(?:[A-Za-z_]\w*\.)*(?:[A-Za-z_]\w*:)+$")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_CODE_TOKEN = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::|#)[A-Za-z_$][\w$]*)*")
# Marks of code inside prose: camelCase, an inner capital run (IPSlice), an inner underscore (parse_args).
_LOOKS_LIKE_CODE = re.compile(r"[a-z0-9][A-Z]|[A-Z]{2}[a-z]|[A-Za-z0-9]_[A-Za-z0-9]")
_ACRONYM = re.compile(r"[a-z]?[A-Z]+s?")  # URLs, APIs, iOS
_SELF = re.compile(r"^(self|this|cls)\.")
# `const f = (x) => x + 1;`, `handler = (e) => this.on(e);`: an arrow function with an expression body ends
# in ";" without a brace, like a signature, but it is assigned (an "=" before its parameters or type parameters).
_ASSIGNED = re.compile(r"[^(<]*?(?<![=!<>])=(?![=>])")
# JSDoc/TSDoc/Javadoc cross-references: ``Calls {@link Query#onOnline} on every cached query`` describes
# QueryCache.onOnline, which calls the linked one. Dev split, 2026-12-05: TypeScript 0.642 -> 0.657, micro 0.630
# -> 0.633; Sphinx roles (``:class:`Pattern```) name the subject as often as not (Python 0.616 -> 0.611): kept.
_DOC_LINK = re.compile(r"\{@link(?:code|plain)?\s[^}]*\}")
MAX_MENTIONED_NAMES = 3
# Definitions looked up per mentioned name: a passing mention of a common name (get, toString) must not pull in
# hundreds of rows with their text.
MENTION_LOOKUP_LIMIT = 50
MAX_QUESTION_WORDS = 20  # a question, not a pasted paragraph
MAX_SENTENCE_CHARS = 1000  # longer: pasted text, whose words say little about any one name
# Code in a query: a call, an operator, quotes (not an apostrophe), snake_case, camelCase, a dotted name.
_CODE = re.compile(r"[()\[\]{}=<>_:;/\\`\"#$@*]|\B'|'\B|\w\.\w|[a-z][A-Z]")
# A question asked in words, whatever its case.
_QUESTION_WORD = re.compile(r"(?i)(?:how|what|why|where|which|when|who)\b")


@dataclass(frozen=True, slots=True)
class Weights:
    """Multipliers on the fused score (1.0 = no change)."""

    # Tuned on the dev split (bench/quality.py --split dev --sweep, 4 repositories, 2026-12-04): container
    # 1.0 -> 0.8 moved doc-query MRR@10 0.396 -> 0.439 (Rust impl and Java class summaries outranked their
    # own methods); block/text/stub at 0.5-0.9 each moved it by <= 0.003, test by nothing (no test hits there);
    # moderate values are kept so a window or stub that matches much better still wins. The benchmark's
    # targets are all functions, which flatters any class demotion: 0.9 (0.436 on dev) rather than 0.8.
    block: float = 0.7
    text: float = 0.7
    stub: float = 0.7
    test: float = 0.8
    container: float = 0.9  # class chunks: a summary of methods that have chunks of their own
    # Methods of a class the query mentions (``Clears the `IndexSet` in the given range`` asks for IndexSet.drain,
    # not IndexMapCore.drain). Dev split, 2026-12-05: 1.0 -> 1.05..1.5 moved doc-query MRR@10 0.752 -> 0.758
    # (Python 0.747 -> 0.771), exact names unchanged; a mild boost, as a mention in passing is weak evidence.
    member: float = 1.1
    # A function or method whose name is in the words of a sentence query (name_words.py) gains up to this share
    # of its cosine (``_lift_named``). Dev split, 2026-12-06, first stage: 0.658 -> 0.673 at 0.1 (0.671, 0.672,
    # 0.670, 0.670 at 0.05, 0.075, 0.15, 0.2); Rust 0.511 -> 0.547, JS unchanged. Typed questions are left alone:
    # on CoSQA dev the same boost cost 0.546 -> 0.525 (many functions there are named in the question's words).
    name_words: float = 0.1
    # A demoted chunk (not a window) falls no lower than a candidate whose cosine is under this share of its own
    # (0: no floor).
    floor: float = 0.5


WEIGHTS = Weights()
# Only the first RULES_POOL fused candidates are re-ordered (the rest keep fusion's order): a demotion of 0.7
# moves fusion's first hit to about rank 26, so nothing further down can reach a page of results. Measured:
# re-ordering all ~80 candidates cost 38 ms p50 on a busy 2-core machine, most of it per-row checks.
RULES_POOL = 40
# Defining chunks looked up by name when the query is an identifier (fusion may miss a short name entirely).
NAME_LOOKUP_LIMIT = 200


def normalise(name: str) -> str:
    """Case- and separator-insensitive form of a name: ``Session.request`` -> ``sessionrequest``."""
    # Names repeat across searches and are cached; a whole query (up to 4 KB) is not kept: 30,000 of them had
    # grown a process by 240 MB.
    return _normalised_name(name) if len(name) <= MAX_NAME else _NON_ALNUM.sub("", name.lower())


@lru_cache(maxsize=1 << 16)
def _normalised_name(name: str) -> str:
    return _NON_ALNUM.sub("", name.lower())


@lru_cache(maxsize=1 << 16)
def _test_path(path: str) -> bool:
    return bool(_TEST_PATH.search(path))


def is_test(path: str, name: str = "") -> bool:
    """Whether a chunk is test code: by its file's path, or by a test-style function name."""
    if _test_path(path):
        return True
    last = name.rsplit(".", 1)[-1]
    return bool(last) and (last in _TEST_HOOKS or bool(_TEST_NAME.match(last)))


def has_test_attribute(text: str) -> bool:
    """Whether the attributes or annotations a chunk starts with mark it as a test (Rust ``#[test]``, Java and
    Kotlin ``@Test``, C# ``[Fact]``, PHP ``#[Test]``), or it is one (Zig ``test "name" { ... }``)."""
    if text.startswith(("test \"", "test {")):
        return True  # a Zig test block
    if not text.startswith(("#[", "@", "[", " ", "\t")):
        return False  # the common case, decided without splitting the text into lines
    for line in text.lstrip()[:1024].splitlines()[:8]:
        line = line.strip()
        if not line.startswith(("#[", "@", "[")):
            return False
        if _TEST_ATTRIBUTE.match(line):
            return True
    return False


def is_stub(row: ChunkRow) -> bool:
    """A declaration rather than an implementation: stub files, headers, and bodiless function signatures."""
    path = row.path
    if path.endswith(_STUB_SUFFIXES):
        return True
    if row.kind in (FUNCTION, METHOD):
        if path.endswith(_HEADER_SUFFIXES) and "{" not in row.text and not row.text.lstrip().startswith("#"):
            return True  # a prototype; a function-like macro (`#define CLAMP(...)`) is its own definition
        stripped = row.text.rstrip()
        if row.language in ("typescript", "tsx", "java", "c", "cpp", "cuda") and stripped.endswith(";") \
                and "{" not in stripped and not _ASSIGNED.match(stripped):
            return True  # overload signature, abstract/interface method, prototype
        if row.language == "python" and _python_body_is_ellipsis(row.text):
            return True  # typing.overload / Protocol stubs
    return False


def _python_body_is_ellipsis(text: str) -> bool:
    if not text.rstrip().endswith("..."):
        return False  # the common case, decided without splitting the text into lines
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("@", "#"))]
    return bool(lines) and (lines[-1] == "..." or lines[-1].endswith(": ...")) and len(lines) <= 8


def query_names(query: str) -> tuple[str, str] | None:
    """``(normalised full name, normalised last part)`` when the query could name a definition, else None.

    A code-like query (``CaseInsensitiveDict``, ``Session.request``, ``parse_args()``) or a short phrase whose
    words spell an identifier (``case insensitive dict``) qualifies; longer sentences do not.
    """
    q = query.strip()
    if _IDENT_QUERY.match(q) or _SELECTOR_QUERY.match(q):
        parts = re.split(r"\.|::|#", q.removesuffix("()"))
        return normalise("".join(parts)), normalise(parts[-1])
    words = q.split()
    if 1 < len(words) <= 4 and all(re.fullmatch(r"[A-Za-z_][\w]*", w) for w in words):
        full = normalise(q)
        return full, full
    return None


def mentioned_names(query: str) -> tuple[str, ...]:
    """Identifiers a query mentions in passing, unless the whole query is one (``query_names`` has that).

    Only tokens that could not be English qualify: ``NFlag``, ``IPSliceVar``, ``parse_args``, ``Session.getUser``;
    a capitalised word (``Args returns ...``) might start any sentence, and ``URLs`` or ``iOS`` are prose.
    snake_case and camelCase go before PascalCase (``JavaScript``, ``GitHub`` are names of things, not code).
    """
    if _IDENT_QUERY.match(query.strip()) or _SELECTOR_QUERY.match(query.strip()):
        return ()
    found = [_SELF.sub("", t) for t in _CODE_TOKEN.findall(_DOC_LINK.sub(" ", query))
             if _LOOKS_LIKE_CODE.search(t) and not _ACRONYM.fullmatch(t)]
    found.sort(key=lambda t: 0 if "_" in t or t[:1].islower() else 1)  # stable: the query's order otherwise
    return tuple(dict.fromkeys(found))[:MAX_MENTIONED_NAMES]


def is_typed_question(query: str) -> bool:
    """A question in plain words as people type them: 2 to 20 words, no code, no full stop, and a lower-case start
    or the look of a question (a question mark at the end, or how/what/why/where/which/when/who first).

    Doc-comment sentences ("Return the sum of the values.") start with a capital or end with a full stop; a
    query that mentions code (``parse_args``, ``len(x)``) goes to the cross-encoder. A short phrase that might
    spell a name ("read csv file") is both: its definitions keep the rules' name tiers either way. A capital
    alone says little ("Parse a cookie header" is how doc comments without a full stop read), but a question
    mark or a question word does: on CoSQA dev, its questions capitalised and ending in "?" took the
    cross-encoder under the lower-case rule alone (0.546) and score 0.558 this way; none of the 1,003 dev
    doc-comment sentences reads as such a question.
    """
    text = query.strip()
    words = text.split()
    if not 2 <= len(words) <= MAX_QUESTION_WORDS or text.endswith(".") or _CODE.search(text):
        return False
    if text[0].isupper() and not (text.endswith("?") or _QUESTION_WORD.match(text)):
        return False
    return not mentioned_names(text)


def mention_tier(row: ChunkRow, mentioned: tuple[str, ...]) -> int:
    """1: a function or method the query mentions (by its own or its qualified name); 0: otherwise.

    Classes are left out: in prose a class is usually the context (``Initializes the RegexPattern instance``
    asks for ``RegexPattern.__init__``), a function the subject.
    """
    if not mentioned or row.kind not in (FUNCTION, METHOD) or not row.name or _is_constructor(row):
        return 0
    name = row.name
    own = name.rsplit(".", 1)[-1]
    called = _called_name(row)
    for m in map(_typed_name, mentioned):
        if name == m or own == m or name.endswith("." + m) or called == m or called.endswith("." + m):
            return 1
    return 0


def _called_name(row: ChunkRow) -> str:
    """A definition's name as code calls it, where that differs from its chunk's: a Kotlin companion's member is
    stored as ``Outer.Companion.of`` (apart from the class's own ``Outer.of``) and called ``Outer.of``."""
    if row.language == "kotlin" and ".Companion." in row.name:
        return row.name.replace(".Companion.", ".")
    return row.name


def _is_constructor(row: ChunkRow) -> bool:
    """A JavaScript constructor function (``function DirectoryEntry(...)``): a class in all but syntax."""
    return row.kind == FUNCTION and row.language in JS_LANGUAGES and row.name[:1].isupper() and "." not in row.name


def name_tier(row: ChunkRow, names: tuple[str, str] | None, query: str) -> int:
    """2: defines exactly the name typed; 1: defines it up to case and separators; 0: otherwise."""
    if names is None or row.kind not in _DEFINITIONS or not row.name:
        return 0
    full, last = names
    q = _typed_name(query)
    if row.name == q or row.name.rsplit(".", 1)[-1] == q or _called_name(row) == q:
        return 2
    qual = normalise(row.name)
    own = normalise(row.name.rsplit(".", 1)[-1])
    if qual == full or own == full or (full != last and qual.endswith(full)):
        return 1
    return 0


@lru_cache(maxsize=256)
def _typed_name(query: str) -> str:
    """The name a query types, spelled as stored names are (``a::b`` and ``a#b`` -> ``a.b``)."""
    return query.strip().removesuffix("()").replace("::", ".").replace("#", ".")


def demotion(row: ChunkRow, query_is_about_tests: bool, weights: Weights = WEIGHTS) -> float:
    """The product of the factors that apply to a chunk."""
    factor = 1.0
    if row.kind == CLASS:
        factor *= weights.container
    elif row.kind == BLOCK:
        factor *= weights.block
    elif row.kind == TEXT:
        factor *= weights.text
    if is_stub(row):
        factor *= weights.stub
    if not query_is_about_tests and (is_test(row.path, row.name) or has_test_attribute(row.text)):
        factor *= weights.test
    return factor


@dataclass(frozen=True, slots=True)
class QueryRules:
    """The rules' reading of one query: the names it is or mentions, whether it asks about tests, and the words a
    sentence names functions with (empty for names and typed questions)."""

    query: str
    names: tuple[str, str] | None
    mentioned: tuple[str, ...]
    about_tests: bool
    words: frozenset[str] = frozenset()

    @classmethod
    def of(cls, query: str) -> QueryRules:
        names = query_names(query)
        sentence = names is None and len(query) <= MAX_SENTENCE_CHARS and not is_typed_question(query)
        return cls(query, names, mentioned_names(query), bool(_MENTIONS_TEST.search(query)),
                   query_words(query) if sentence else frozenset())

    def tier(self, row: ChunkRow) -> int:
        """2 or 1: a definition of the name the query is or mentions (``name_tier``, ``mention_tier``); 0: other."""
        return max(name_tier(row, self.names, self.query), mention_tier(row, self.mentioned))

    def demotion(self, row: ChunkRow, weights: Weights = WEIGHTS) -> float:
        factor = demotion(row, self.about_tests, weights)
        if weights.member != 1.0 and self.mentioned and row.kind == METHOD and "." in (row.name or ""):
            owner = row.name.rsplit(".", 1)[0].rsplit(".", 1)[-1]
            if any(m.rsplit(".", 1)[-1] == owner for m in self.mentioned):
                factor *= weights.member
        return factor

    def name_boost(self, row: ChunkRow, weights: Weights = WEIGHTS) -> float:
        """1 plus ``weights.name_words`` times the share of a function's name a sentence query uses; 1 otherwise."""
        if not self.words or not weights.name_words or row.kind not in (FUNCTION, METHOD) or not row.name:
            return 1.0
        return 1.0 + weights.name_words * name_overlap(row.name, self.words)


def apply_rules(
    store: Store, fused: list[tuple[int, float]], query: str, allowed=None, weights: Weights = WEIGHTS,
    rows_seen: dict[int, ChunkRow] | None = None, cosines: dict[int, float] | None = None,
) -> list[tuple[int, float]]:
    """Re-order fused ``(chunk id, score)`` by the rules above; scores are kept as fusion gave them.

    ``allowed(path, language, kind)`` filters chunks found by the name lookup (the fused ones are already filtered).
    ``rows_seen``, when given, receives the rows read, so the caller need not read the top results again.
    ``cosines`` (the dense ranking's similarities) lets a sentence lift the functions named in its words.
    """
    rules = QueryRules.of(query)
    head, tail = fused[:RULES_POOL], fused[RULES_POOL:]
    top = fused[0][1] if fused else 1.0
    # A definition of the name the query is gets the best score (it is what was asked for); one of a name it
    # mentions ranks after the definitions retrieval found, which matched the rest of the question too.
    lookups = [(query, NAME_LOOKUP_LIMIT, top)] if rules.names is not None else []
    lookups += [(name, MENTION_LOOKUP_LIMIT, head[-1][1] if head else top) for name in rules.mentioned]
    known = {cid for cid, _ in head}
    extra: dict[int, float] = {}
    for lookup, limit, score in lookups:
        for cid in store.name_candidates(lookup, limit):
            if cid not in known and cid not in extra:
                extra[cid] = score
    rows = store.chunks_by_ids([cid for cid, _ in head] + list(extra))
    if rows_seen is not None:
        rows_seen.update(rows)
    candidates = list(head)
    for cid, score in extra.items():
        row = rows.get(cid)
        if row is not None and rules.tier(row) and (allowed is None or allowed(row.path, row.language, row.kind)):
            candidates.append((cid, score))
    keyed = []
    for position, (cid, score) in enumerate(candidates):
        row = rows.get(cid)
        if row is None:
            continue
        # Within a name tier the best implementation first: fused score times the demotions.
        demoted = rules.demotion(row, weights)
        keyed.append(((-rules.tier(row), -score * demoted, position), cid, score, row, demoted))
    keyed.sort(key=lambda t: t[0])
    if cosines and weights.floor:
        keyed = _floor_demotions(keyed, cosines, weights.floor)
    if rules.words and cosines and weights.name_words:
        keyed = _lift_named(keyed, rules, cosines, weights)
    lifted = {cid for cid, _ in candidates[len(head):]}
    return [(cid, score) for _key, cid, score, _row, _d in keyed] + [t for t in tail if t[0] not in lifted]


def _floor_demotions(keyed: list, cosines: dict[int, float], floor: float) -> list:
    """The rules' order, where a demoted chunk (a class, a stub, a test; not a window) no longer falls below a
    candidate of its tier that fusion put under it and whose cosine is less than ``floor`` times its own.

    A demotion multiplies a fused score, a reciprocal rank, so 0.9 moves a chunk about seven places whatever the
    similarities: in a small repository the class ``RetryPolicy`` ("Retry a callable with exponential backoff",
    cosine 0.70 for "retry backoff") fell behind ``fib`` (0.04). It still goes below whatever is about as similar,
    its own methods among them when they are."""
    out = []
    for (tier, neg_effective, position), cid, score, row, demoted in keyed:
        cosine = cosines.get(cid)
        effective = -neg_effective
        # Not for windows: module-level code and text rank below named definitions unless nothing else matches
        # (a module docstring window would otherwise pass weak functions and be lifted by the second stage).
        if demoted < 1 and cosine is not None and row.kind not in (BLOCK, TEXT):
            bar = max(cosine, 0.0) * floor
            passed = [-k[1] for k, other, other_score, _r, _d in keyed
                      if k[0] == tier and other_score < score and cosines.get(other, bar) < bar]
            if passed:
                effective = max(effective, max(passed) * (1 + 1e-9))
        out.append(((tier, -effective, position), cid, score, row, demoted))
    out.sort(key=lambda t: t[0])
    return out


def _lift_named(keyed: list, rules: QueryRules, cosines: dict[int, float], weights: Weights) -> list:
    """The rules' order, where a function whose name a sentence uses may pass those above it in its tier whose
    (demoted) cosine is less than ``rules.name_boost`` times its own.

    Fused scores are reciprocal ranks, two near neighbours differ by 1 or 2 %, so a boost there is a jump of
    places whatever the similarities; cosines say how close two candidates really are. Each place gets the lowest
    demoted cosine so far (an envelope: the order is unchanged without boosts). Measured on the dev split
    (2026-12-06): a 1.1 boost on the envelope 0.658 -> 0.673 first stage; on fused scores, 1.03 at best, 0.663.
    """
    envelope = float("inf")
    out = []
    for place, ((tier, _score, _position), cid, score, row, demoted) in enumerate(keyed):
        cosine = cosines.get(cid)
        if cosine is not None:  # a chunk only BM25 or a name lookup found has none: it keeps the place's value
            envelope = min(envelope, max(cosine, 0.0) * demoted)
        out.append(((tier, -envelope * rules.name_boost(row, weights), place), cid, score, row, demoted))
    out.sort(key=lambda t: t[0])
    return out
