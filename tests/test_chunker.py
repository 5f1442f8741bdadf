"""The tree-sitter chunker, specified on one small realistic file per language (tests/fixtures/polyglot)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from codeneedle.indexer import chunker
from codeneedle.indexer.chunker import MAX_TEXT_BYTES, WINDOW_LINES, chunk_source
from codeneedle.indexer.chunks import Chunk
from codeneedle.indexer.languages import (
    SUPPORTED_LANGUAGES,
    get_language,
    get_parser,
    get_query,
    language_for_path,
    language_for_source,
)

POLYGLOT = Path(__file__).parent / "fixtures" / "polyglot"


def chunks_of(name: str) -> list[Chunk]:
    data = (POLYGLOT / name).read_bytes()
    return chunk_source(f"src/{name}", data, language_of(name))


def language_of(name: str) -> str | None:
    """The language the index reads a fixture in (a `.m` file is Objective-C or MATLAB by what it says)."""
    return language_for_source(name, (POLYGLOT / name).read_bytes())


def outline(chunks: list[Chunk]) -> list[tuple[str, str, int, int]]:
    return [(c.kind, c.name, c.start_line, c.end_line) for c in chunks]


def by_name(chunks: list[Chunk], name: str, kind: str | None = None) -> Chunk:
    found = [c for c in chunks if c.name == name and (kind is None or c.kind == kind)]
    assert len(found) == 1, f"{name}: {outline(chunks)}"
    return found[0]


# -- languages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a/b.py", "python"),
        ("stubs.pyi", "python"),
        ("x.js", "javascript"),
        ("x.mjs", "javascript"),
        ("x.cjs", "javascript"),
        ("App.jsx", "javascript"),
        ("x.ts", "typescript"),
        ("x.mts", "typescript"),
        ("x.cts", "typescript"),
        ("App.tsx", "tsx"),
        ("main.go", "go"),
        ("lib.rs", "rust"),
        ("Main.java", "java"),
        ("x.c", "c"),
        ("x.h", "c"),
        ("x.cc", "cpp"),
        ("x.cpp", "cpp"),
        ("x.cxx", "cpp"),
        ("x.hpp", "cpp"),
        ("x.hh", "cpp"),
        ("x.hxx", "cpp"),
        ("x.rb", "ruby"),
        ("Program.cs", "csharp"),
        ("index.php", "php"),
        ("Main.kt", "kotlin"),
        ("build.gradle.kts", "kotlin"),
        ("App.swift", "swift"),
        ("Main.scala", "scala"),
        ("build.sc", "scala"),
        ("init.lua", "lua"),
        ("run.sh", "bash"),
        ("lib.bash", "bash"),
        ("main.dart", "dart"),
        ("lib/repo.ex", "elixir"),
        ("test/repo_test.exs", "elixir"),
        ("Player.m", "objc"),
        ("Player.mm", "objc"),
        ("src/main.zig", "zig"),
        ("src/Data/Queue.hs", "haskell"),
        ("src/Geometry.jl", "julia"),
        ("lib/lru.ml", "ocaml"),
        ("lib/lru.mli", "ocaml_interface"),
        ("lib/Shop/Inventory.pm", "perl"),
        ("script/report.pl", "perl"),
        ("t/inventory.t", "perl"),
        ("db/schema.sql", "sql"),
        ("infra/main.tf", "hcl"),
        ("prod.tfvars", "hcl"),
        ("terragrunt.hcl", "hcl"),
        ("contracts/Vault.sol", "solidity"),
        ("src/Inventory.fs", "fsharp"),
        ("build.fsx", "fsharp"),
        ("src/Inventory.fsi", "fsharp_signature"),
        ("Deploy.ps1", "powershell"),
        ("Tools.psm1", "powershell"),
        ("kernels/saxpy.cu", "cuda"),
        ("kernels/reduce.cuh", "cuda"),
        ("src/vectors.f90", "fortran"),
        ("legacy.f", "fortran"),
        ("LEGACY.FOR", "fortran"),
        ("solver.f95", "fortran"),
        ("solver.f03", "fortran"),
        ("solver.f08", "fortran"),
        ("UPPER.PY", "python"),
        ("README.md", "markdown"),
        ("docs/intro.mdx", "markdown"),
        ("App.vue", "vue"),
        ("analysis.ipynb", "jupyter"),
        ("notes.txt", None),
        ("Makefile", None),
        (".py", None),
    ],
)
def test_language_is_chosen_by_extension(path: str, language: str | None) -> None:
    assert language_for_path(path) == language


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_every_language_has_a_grammar_parser_and_definitions_query(language: str) -> None:
    assert get_parser(language).language == get_language(language)
    query = get_query(language)
    names = {query.capture_name(i) for i in range(query.capture_count)}
    assert "name" in names or "name.type" in names
    assert any(n.startswith("definition.") for n in names)
    with warnings.catch_warnings():  # a grammar handing tree-sitter a bare int (deprecated) would warn on each load
        warnings.simplefilter("error")
        assert get_language.__wrapped__(language) == get_language(language)


# -- one outline per language -------------------------------------------------------------------------

OUTLINES = {
    "config_parser.py": [
        ("block", "config_parser", 1, 6),
        ("class", "ConfigError", 9, 10),
        ("class", "Section", 13, 28),
        ("method", "Section.get", 20, 22),
        ("class", "Section.Meta", 24, 28),
        ("method", "Section.Meta.describe", 27, 28),
        ("class", "ConfigParser", 31, 68),
        ("method", "ConfigParser.__init__", 36, 38),
        ("method", "ConfigParser.section_names", 40, 43),
        ("method", "ConfigParser.parse", 45, 68),
        ("function", "load_config", 73, 77),
        ("block", "config_parser", 80, 81),
    ],
    "event_bus.js": [
        ("block", "event_bus", 1, 4),
        ("class", "EventBus", 9, 42),
        ("method", "EventBus.constructor", 12, 14),
        ("method", "EventBus.on", 21, 29),
        ("method", "EventBus.off", 32, 35),
        ("method", "EventBus.emit", 37, 41),
        ("function", "createLoggingBus", 45, 53),
        ("function", "once", 56, 62),
        ("block", "event_bus", 64, 64),
    ],
    "http_client.ts": [
        ("block", "http_client", 1, 1),
        ("class", "Method", 3, 3),
        ("class", "RequestOptions", 6, 9),
        ("class", "Status", 11, 14),
        ("class", "HttpClient", 19, 44),
        ("method", "HttpClient.constructor", 23, 25),
        ("method", "HttpClient.getJson", 28, 31),
        ("method", "HttpClient.request", 33, 43),
        ("block", "http_client", 46, 46),
        ("function", "Retry.backoff", 48, 50),
        ("function", "defaultClient", 54, 54),
    ],
    "todo_list.tsx": [
        ("block", "todo_list", 1, 1),
        ("class", "Todo", 3, 7),
        ("class", "TodoListProps", 10, 10),
        ("function", "TodoList", 15, 28),
        ("class", "TodoStats", 31, 36),
        ("method", "TodoStats.render", 32, 35),
        ("block", "todo_list", 38, 38),
    ],
    "shapes.go": [
        ("block", "shapes", 1, 10),
        ("class", "Shape", 13, 16),
        ("class", "Rect", 19, 21),
        ("method", "Rect.Area", 24, 26),
        ("method", "Rect.Perimeter", 29, 31),
        ("class", "Stack", 33, 35),
        ("method", "Stack.Push", 38, 40),
        ("function", "Describe", 43, 45),
    ],
    "inventory.rs": [
        ("block", "inventory", 1, 6),
        ("class", "Item", 9, 13),
        ("class", "Restock", 16, 23),
        ("method", "Restock.is_empty", 20, 22),
        ("class", "Inventory", 25, 27),
        ("class", "Inventory", 29, 44),
        ("method", "Inventory.new", 31, 33),
        ("method", "Inventory.add", 36, 43),
        ("class", "Inventory", 46, 50),
        ("method", "Inventory.fmt", 47, 49),
        ("function", "total_units", 53, 55),
        ("block", "inventory", 57, 59),
        ("function", "tests.starts_empty", 61, 64),
    ],
    "BankAccount.java": [
        ("block", "BankAccount", 1, 4),
        ("class", "BankAccount", 9, 55),
        ("method", "BankAccount.BankAccount", 14, 16),
        ("method", "BankAccount.deposit", 23, 29),
        ("method", "BankAccount.withdraw", 32, 40),
        ("class", "BankAccount.StatementKind", 43, 50),
        ("method", "BankAccount.StatementKind.label", 47, 49),
        ("class", "BankAccount.Auditor", 52, 54),
    ],
    "ring_buffer.c": [
        ("block", "ring_buffer", 1, 5),
        ("class", "ring_t", 8, 12),
        ("class", "stats", 14, 17),
        ("block", "ring_buffer", 19, 19),
        ("function", "ring_push", 24, 33),
        ("function", "ring_new", 36, 43),
    ],
    "matrix.cpp": [
        ("block", "matrix", 1, 4),
        ("class", "linalg.Matrix", 7, 20),
        ("method", "linalg.Matrix.at", 12, 12),
        ("method", "linalg.Matrix.Matrix", 22, 23),
        ("method", "linalg.Matrix.multiply", 26, 33),
        ("function", "linalg.trace", 36, 41),
        ("block", "matrix", 43, 43),
    ],
    "library.rb": [
        ("block", "library", 1, 4),
        ("class", "Lending", 7, 33),
        ("class", "Lending.Book", 9, 32),
        ("method", "Lending.Book.initialize", 12, 15),
        ("method", "Lending.Book.lend", 18, 21),
        ("method", "Lending.Book.from_isbn", 23, 25),
        ("method", "Lending.Book.catalog", 28, 30),
        ("function", "format_due", 36, 38),
        ("block", "library", 40, 40),
    ],
    "OrderService.cs": [
        ("block", "OrderService", 1, 5),
        ("class", "Shop.Orders.OrderService", 9, 42),
        ("method", "Shop.Orders.OrderService.OrderService", 14, 14),
        ("method", "Shop.Orders.OrderService.Count", 17, 20),
        ("method", "Shop.Orders.OrderService.Place", 29, 35),
        ("method", "Shop.Orders.OrderService.Total", 38, 38),
        ("class", "Shop.Orders.OrderService.Line", 41, 41),
        ("class", "Shop.Orders.IOrderService", 44, 47),
        ("block", "OrderService", 50, 51),
        ("class", "Shop.Extensions.Money", 52, 56),
        ("method", "Shop.Extensions.Money.ToPrice", 55, 55),
    ],
    "Cart.php": [
        ("block", "Cart", 1, 7),
        ("class", "Shop.Cart.Cart", 12, 42),
        ("method", "Shop.Cart.Cart.__construct", 18, 20),
        ("method", "Shop.Cart.Cart.add", 28, 33),
        ("method", "Shop.Cart.Cart.count", 36, 39),
        ("class", "Shop.Cart.Discount", 44, 47),
        ("function", "Shop.Cart.format_price", 52, 55),
    ],
    "TaskQueue.kt": [
        ("block", "TaskQueue", 1, 3),
        ("class", "TaskQueue", 8, 37),
        ("method", "TaskQueue.isEmpty", 13, 14),
        ("method", "TaskQueue.offer", 21, 25),
        ("method", "TaskQueue.poll", 28, 28),
        ("class", "TaskQueue.Task", 31, 31),
        ("class", "TaskQueue.Companion", 33, 36),
        ("method", "TaskQueue.Companion.withCapacity", 35, 35),
        ("class", "Scheduler", 39, 41),
        ("method", "TaskQueue.drain", 44, 48),
    ],
    "Thermostat.swift": [
        ("block", "Thermostat", 1, 1),
        ("class", "Thermostat", 4, 32),
        ("method", "Thermostat.init", 10, 12),
        ("method", "Thermostat.isHeating", 15, 17),
        ("method", "Thermostat.adjust", 22, 26),
        ("class", "Thermostat.Mode", 29, 31),
        ("class", "Sensor", 34, 36),
        ("class", "Thermostat", 38, 41),
        ("method", "Thermostat.description", 40, 40),
        ("function", "celsius", 44, 46),
    ],
    "WordCount.scala": [
        ("block", "WordCount", 1, 3),
        ("class", "WordCount", 9, 24),
        ("method", "WordCount.add", 13, 16),
        ("method", "WordCount.top", 19, 21),
        ("class", "WordCount", 26, 33),
        ("method", "WordCount.of", 28, 32),
        ("class", "Tokenizer", 35, 37),
        ("function", "normalize", 40, 41),
    ],
    "stack.lua": [
        ("block", "stack", 1, 2),
        ("method", "Stack.new", 6, 8),
        ("method", "Stack.push", 12, 15),
        ("method", "Stack.pop", 18, 26),
        ("function", "clamp", 29, 31),
        ("method", "Stack.peek", 33, 35),
        ("block", "stack", 37, 37),
    ],
    "deploy.sh": [
        ("block", "deploy", 1, 4),
        ("function", "usage", 7, 10),
        ("function", "deploy_release", 14, 17),
        ("function", "main", 19, 22),
        ("block", "deploy", 24, 24),
    ],
    "playlist.dart": [
        ("block", "playlist", 1, 1),
        ("class", "Track", 4, 17),
        ("method", "Track.fromJson", 11, 13),
        ("method", "Track.toString", 15, 16),
        ("class", "Playlist", 20, 35),
        ("method", "Playlist.total", 24, 24),
        ("method", "Playlist.add", 27, 29),
        ("method", "Playlist.shuffle", 32, 34),
        ("class", "Clock", 38, 41),
        ("method", "Clock.clock", 40, 40),
        ("function", "playlistOf", 44, 48),
    ],
    "rate_limiter.ex": [
        ("class", "Shop.RateLimiter", 1, 35),
        ("method", "Shop.RateLimiter.start_link", 13, 16),
        ("method", "Shop.RateLimiter.allow?", 19, 21),
        ("method", "Shop.RateLimiter.init", 23, 24),
        ("method", "Shop.RateLimiter.reset", 27, 29),
        ("class", "Shop.RateLimiter.Bucket", 31, 34),
        ("class", "String.Chars.Shop.RateLimiter.Bucket", 37, 39),
        ("method", "String.Chars.Shop.RateLimiter.Bucket.to_string", 38, 38),
    ],
    "Playback.m": [
        ("block", "Playback", 1, 3),
        ("class", "Playable", 6, 8),
        ("class", "PlaybackQueue", 13, 16),
        ("block", "Playback", 18, 18),
        ("class", "PlaybackQueue", 20, 41),
        ("method", "PlaybackQueue.initWithItems:repeat:", 25, 31),
        ("method", "PlaybackQueue.play", 33, 36),
        ("method", "PlaybackQueue.count", 39, 39),
        ("class", "PlaybackQueue", 43, 47),
        ("method", "PlaybackQueue.shuffle", 45, 45),
        ("function", "FormatDuration", 50, 53),
    ],
    "ring.zig": [
        ("block", "ring", 1, 1),
        ("class", "Ring", 4, 21),
        ("method", "Ring.init", 10, 12),
        ("method", "Ring.push", 15, 18),
        ("class", "Source", 24, 31),
        ("method", "Source.label", 28, 30),
        ("function", "sum", 34, 38),
        ("function", "push wraps around", 40, 47),
    ],
    "Queue.hs": [
        ("block", "Queue", 1, 6),
        ("class", "Queue", 9, 10),
        ("function", "empty", 13, 14),
        ("function", "push", 17, 18),
        ("function", "pop", 23, 26),
        ("class", "Sized", 29, 30),
        ("method", "Sized.size", 30, 30),
        ("class", "Sized.Queue", 32, 33),
        ("method", "Sized.Queue.size", 33, 33),
        ("function", "main", 35, 38),
    ],
    "geometry.jl": [
        ("block", "geometry", 1, 3),
        ("class", "Geometry.Shape", 6, 6),
        ("class", "Geometry.Circle", 13, 15),
        ("class", "Geometry.Rect", 17, 20),
        ("function", "Geometry.area", 27, 29),
        ("function", "Geometry.area", 31, 31),
        ("function", "Geometry.scale", 34, 36),
        ("function", "Base.show", 38, 40),
        ("block", "geometry", 42, 42),
    ],
    "lru.ml": [
        ("block", "lru", 1, 1),
        ("class", "t", 3, 6),
        ("function", "create", 9, 9),
        ("function", "find", 12, 17),
        ("function", "take", 19, 21),
        ("block", "lru", 23, 23),
        ("function", "add", 24, 25),
        ("class", "Stats", 27, 30),
        ("method", "Stats.load", 29, 29),
    ],
    "lru.mli": [
        ("block", "lru", 1, 1),
        ("class", "t", 3, 3),
        ("function", "create", 6, 6),
        ("function", "find", 10, 10),
        ("function", "add", 12, 12),
        ("class", "Stats", 14, 17),
        ("method", "Stats.load", 15, 15),
    ],
    "Inventory.pm": [
        ("block", "Inventory", 1, 7),
        ("function", "Shop.Inventory.new", 15, 18),
        ("function", "Shop.Inventory.add", 21, 25),
        ("function", "Shop.Inventory.count", 27, 27),
        ("block", "Inventory", 29, 29),
        ("function", "Shop.Inventory.Report.lines", 31, 34),
        ("block", "Inventory", 37, 37),
    ],
    "orders.sql": [
        ("block", "orders", 1, 2),
        ("class", "orders", 5, 10),
        ("block", "orders", 12, 13),
        ("function", "customer_total", 16, 20),
        ("class", "big_orders", 23, 24),
        ("block", "orders", 26, 26),
    ],
    "storage.tf": [
        ("block", "storage", 1, 3),
        ("class", "aws_s3_bucket.logs", 6, 12),
        ("class", "module.vpc", 14, 17),
        ("class", "var.prefix", 20, 23),
        ("class", "data.aws_caller_identity.current", 25, 25),
        ("class", "output.logs_bucket_arn", 27, 29),
    ],
    "Vault.sol": [
        ("block", "Vault", 1, 2),
        ("class", "Vault", 5, 27),
        ("method", "Vault.Deposited", 9, 9),
        ("method", "Vault.positive", 11, 14),
        ("method", "Vault.deposit", 20, 24),
        ("method", "Vault.receive", 26, 26),
        ("class", "Math", 29, 33),
        ("method", "Math.max", 30, 32),
    ],
    "Inventory.fs": [
        ("block", "Inventory", 1, 3),
        ("class", "Shop.Inventory.Item", 6, 6),
        ("class", "Shop.Inventory.Stock", 9, 18),
        ("method", "Shop.Inventory.Stock.Count", 13, 16),
        ("method", "Shop.Inventory.Stock.Items", 18, 18),
        ("function", "Shop.Inventory.add", 21, 23),
        ("block", "Inventory", 25, 25),
        ("class", "Shop.Inventory.Report", 27, 31),
        ("method", "Shop.Inventory.Report.lines", 29, 31),
    ],
    "Inventory.fsi": [
        ("block", "Inventory", 1, 1),
        ("class", "Shop.Inventory.Item", 4, 4),
        ("function", "Shop.Inventory.add", 7, 7),
        ("class", "Shop.Inventory.Report", 9, 11),
        ("method", "Shop.Inventory.Report.lines", 11, 11),
    ],
    "Deploy.ps1": [
        ("block", "Deploy", 1, 2),
        ("function", "Copy-Build", 10, 14),
        ("function", "Get-DeployTarget", 16, 24),
        ("class", "DeployLog", 26, 34),
        ("method", "DeployLog.Add", 30, 33),
        ("block", "Deploy", 36, 36),
    ],
    "moving_average.m": [
        ("function", "moving_average", 1, 6),
        ("function", "clamp", 8, 11),
    ],
    "saxpy.cu": [
        ("block", "saxpy", 1, 3),
        ("function", "blas.saxpy", 6, 11),
        ("function", "blas.square", 14, 14),
        ("block", "saxpy", 16, 16),
        ("function", "run_saxpy", 19, 23),
    ],
    "vectors.f90": [
        ("class", "vectors", 2, 23),
        ("method", "vectors.norm", 10, 14),
        ("method", "vectors.scale", 17, 21),
        ("class", "demo", 25, 28),
    ],
}


def test_every_supported_language_has_a_fixture() -> None:
    assert {language_of(name) for name in OUTLINES} == set(SUPPORTED_LANGUAGES)


@pytest.mark.parametrize("name", sorted(OUTLINES))
def test_outline_names_kinds_and_lines(name: str) -> None:
    """Functions, methods (qualified by their class), classes, and blocks for the code between them."""
    assert outline(chunks_of(name)) == OUTLINES[name]


@pytest.mark.parametrize("name", sorted(OUTLINES))
def test_chunks_carry_path_language_and_exact_byte_ranges(name: str) -> None:
    data = (POLYGLOT / name).read_bytes()
    for c in chunks_of(name):
        assert c.path == f"src/{name}"
        assert c.language == language_of(name)
        assert data[: c.start_byte].count(b"\n") + 1 == c.start_line
        assert data[: c.end_byte - 1].count(b"\n") + 1 == c.end_line
        if c.kind != "class":
            assert c.text == data[c.start_byte : c.end_byte].decode()
        else:
            first_line = data[c.start_byte :].split(b"\n", 1)[0].decode()
            assert c.text.startswith(first_line)


@pytest.mark.parametrize("name", sorted(OUTLINES))
def test_each_byte_of_code_belongs_to_one_non_class_chunk_at_most(name: str) -> None:
    spans = sorted((c.start_byte, c.end_byte) for c in chunks_of(name) if c.kind != "class")
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start


# -- doc comments ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "chunk", "doc"),
    [
        ("config_parser.py", "ConfigError", "Raised when a configuration file cannot be parsed."),
        ("config_parser.py", "Section.get", "Return the value stored under ``key``."),
        (
            "config_parser.py",
            "ConfigParser.parse",
            "Parse ``text`` into sections.\n\nLines starting with a comment prefix are ignored.",
        ),
        (
            "config_parser.py",
            "load_config",
            "Load a configuration file from disk.\nRelative paths are resolved against the working directory.",
        ),
        ("config_parser.py", "ConfigParser.__init__", ""),
        ("event_bus.js", "EventBus", "Dispatches named events to subscribed handlers."),
        (
            "event_bus.js",
            "EventBus.on",
            "Register a handler for an event name.\n@param {string} name\n@param {Function} handler",
        ),
        ("event_bus.js", "EventBus.off", "Remove a previously registered handler."),
        ("event_bus.js", "createLoggingBus", "Create a bus that logs every event it emits."),
        ("event_bus.js", "once", "Wait for the next occurrence of an event."),
        ("http_client.ts", "RequestOptions", "Options accepted by every request."),
        ("http_client.ts", "HttpClient.getJson", "Send a GET request and parse the JSON body."),
        ("http_client.ts", "Retry.backoff", "Exponential backoff delay for an attempt."),
        ("todo_list.tsx", "TodoList", "Renders a list of todos that can be toggled."),
        ("shapes.go", "Rect.Area", "Area returns the rectangle's area."),
        ("shapes.go", "Shape", "Shape is anything with an area."),
        ("shapes.go", "Stack", ""),
        ("inventory.rs", "Item", "One product line in stock."),
        ("inventory.rs", "Inventory.add", "Add an item, merging quantities with an existing entry."),
        (
            "BankAccount.java",
            "BankAccount.deposit",
            "Deposit money into the account.\n\n@param cents amount in cents, must be positive",
        ),
        ("BankAccount.java", "BankAccount.withdraw", "Withdraw money if the balance allows it."),
        ("ring_buffer.c", "ring_push", "Push one byte; returns 0 when the buffer is full."),
        ("ring_buffer.c", "ring_t", "Ring buffer state."),
        ("matrix.cpp", "linalg.Matrix.at", "Element access without bounds checks."),
        ("matrix.cpp", "linalg.trace", "Sum of the diagonal elements."),
        ("library.rb", "Lending.Book", "A book that members can borrow."),
        ("library.rb", "Lending.Book.lend", "Lend the book out for the standard loan period."),
        # C# XML doc comments read as text, the tags as Javadoc's; the [Serializable] / [Obsolete] attribute
        # between a doc comment and its definition leaves them together (so in every language below)
        ("OrderService.cs", "Shop.Orders.OrderService", "Keeps the open orders of a shop and totals them."),
        (
            "OrderService.cs",
            "Shop.Orders.OrderService.Place",
            "Place an order and return its Order.Id.\n\n@param order The order to place.\n@returns The new order's id.",
        ),
        ("OrderService.cs", "Shop.Orders.OrderService.Count", "Number of open orders."),
        ("OrderService.cs", "Shop.Orders.OrderService.Total", "Sum of all order totals, in cents."),
        ("OrderService.cs", "Shop.Orders.OrderService.Line", "One line of an order."),
        ("OrderService.cs", "Shop.Extensions.Money.ToPrice", "Format cents as a price."),
        ("OrderService.cs", "Shop.Orders.OrderService.OrderService", ""),
        ("Cart.php", "Shop.Cart.Cart", "A shopping cart holding products and their quantities."),
        (
            "Cart.php",
            "Shop.Cart.Cart.add",
            "Add a product to the cart.\n\n@param Product $product the product to add\n@param int $quantity how many",
        ),
        ("Cart.php", "Shop.Cart.Cart.count", "Number of distinct products."),
        ("Cart.php", "Shop.Cart.format_price", "Format an amount in cents as a price string."),
        ("TaskQueue.kt", "TaskQueue", "A first-in first-out queue of tasks with priorities."),
        ("TaskQueue.kt", "TaskQueue.isEmpty", "Whether no task is waiting."),
        ("TaskQueue.kt", "TaskQueue.offer", "Add a task to the end of the queue.\n\n@return false when the queue is full"),
        ("TaskQueue.kt", "TaskQueue.Companion.withCapacity", "A queue with room for [n] tasks."),
        ("TaskQueue.kt", "TaskQueue.drain", "Run every task in the queue, in order."),
        ("Thermostat.swift", "Thermostat", "A thermostat that keeps a room at a target temperature."),
        ("Thermostat.swift", "Thermostat.init", "Create a thermostat aiming at `target` degrees."),
        ("Thermostat.swift", "Thermostat.isHeating", "Whether the heating should run now."),
        ("Thermostat.swift", "Thermostat.adjust", "Move the target by `delta` degrees, within safe limits."),
        ("Thermostat.swift", "Thermostat.description", "A short summary for logs."),
        ("Thermostat.swift", "celsius", "Convert Fahrenheit to Celsius."),
        (
            "WordCount.scala",
            "WordCount",
            "Counts words in streams of text.\n\n@param minLength words shorter than this are skipped",
        ),
        ("WordCount.scala", "WordCount.top", "The `n` most frequent words, most frequent first."),
        ("WordCount.scala", "WordCount.of", "Count the words of a whole text at once."),
        ("WordCount.scala", "normalize", "Lower-case a word and strip punctuation."),
        ("stack.lua", "Stack.new", "Create an empty stack.\n@return a new stack"),
        ("stack.lua", "Stack.push", "Push a value on top of the stack.\n@param value any the value to push"),
        ("stack.lua", "Stack.pop", "Remove and return the top value, or nil when empty."),
        ("stack.lua", "clamp", "Clamp a number into a range."),
        ("stack.lua", "Stack.peek", ""),
        ("deploy.sh", "usage", "Print how to call this script and exit."),
        ("deploy.sh", "deploy_release", "Copy a release into the target directory.\nTakes the version to deploy."),
        ("deploy.sh", "main", ""),
        ("playlist.dart", "Track", "One song in a playlist."),
        ("playlist.dart", "Track.fromJson", "A track read from its JSON form."),
        ("playlist.dart", "Track.toString", ""),
        ("playlist.dart", "Playlist.total", "The total playing time."),
        ("playlist.dart", "Clock.clock", "`m:ss`, as a player shows it."),
        ("playlist.dart", "playlistOf", "A playlist holding [tracks], in order."),
        ("rate_limiter.ex", "Shop.RateLimiter", "Counts requests per client in fixed windows."),
        ("rate_limiter.ex", "Shop.RateLimiter.start_link", "Start the limiter under a supervisor."),
        ("rate_limiter.ex", "Shop.RateLimiter.allow?", "Whether `client` may make another request."),
        ("rate_limiter.ex", "Shop.RateLimiter.init", ""),
        ("rate_limiter.ex", "Shop.RateLimiter.reset", "Drop the counts of a finished window."),
        ("rate_limiter.ex", "Shop.RateLimiter.Bucket", "One client's count in the current window."),
        ("Playback.m", "Playable", "Something that can be played."),
        ("Playback.m", "PlaybackQueue.initWithItems:repeat:",
         "A queue of `items`, played again from the start when `repeat` is set."),
        ("Playback.m", "PlaybackQueue.play", ""),
        ("Playback.m", "PlaybackQueue.count", "The number of items left."),
        ("Playback.m", "FormatDuration", "Seconds as m:ss."),
        ("ring.zig", "Ring", "A fixed-size ring of bytes; writing past the end overwrites the oldest."),
        ("ring.zig", "Ring.init", "A ring over `buf`, empty."),
        ("ring.zig", "Source.label", ""),
        ("ring.zig", "sum", "Sum of the bytes, for a checksum."),
        ("Queue.hs", "Queue", "A first-in first-out queue kept as two lists."),
        ("Queue.hs", "pop",
         "Take the value at the front, if there is one.\n\nThe back list is reversed only when the front one runs out."),
        ("Queue.hs", "Sized.Queue.size", ""),
        ("geometry.jl", "Geometry.Shape", "A shape in the plane."),
        ("geometry.jl", "Geometry.Circle", "Circle(r)\n\nA circle of radius `r`."),
        ("geometry.jl", "Geometry.scale", "Scale a shape by `k`."),
        ("geometry.jl", "Base.show", ""),
        ("lru.ml", "create", "An empty cache holding at most [capacity] entries."),
        ("lru.ml", "add", ""),
        ("lru.ml", "Stats.load", "How full [c] is, from 0 to 1."),
        ("lru.mli", "t", "A cache from ['k] to ['v]."),
        ("lru.mli", "create", "An empty cache holding at most the given number of entries."),
        ("lru.mli", "find", "[find c k] is the value under [k], now the most recent."),
        ("lru.mli", "add", ""),
        ("lru.mli", "Stats.load", "How full a cache is, from 0 to 1."),
        ("Inventory.pm", "Shop.Inventory.new", "Create an inventory, optionally with starting stock."),
        ("Inventory.pm", "Shop.Inventory.add", "Add C<$count> items of C<$code>."),
        ("Inventory.pm", "Shop.Inventory.count", ""),
        ("Inventory.pm", "Shop.Inventory.Report.lines", "One line per product, sorted by code."),
        ("orders.sql", "orders", "Orders placed by customers, one row per order."),
        ("orders.sql", "customer_total", "Total amount spent by one customer over all their orders."),
        ("storage.tf", "aws_s3_bucket.logs", "Bucket that receives the load balancer's access logs."),
        ("storage.tf", "var.prefix", "Prefix of every bucket name."),
        ("storage.tf", "module.vpc", ""),
        ("Vault.sol", "Vault", "@title A vault holding ether per account"),
        ("Vault.sol", "Vault.Deposited", "@notice Emitted when an account deposits ether."),
        ("Vault.sol", "Vault.deposit",
         "@notice Deposit ether into the sender's balance.\n@param amount how much the sender sends"),
        ("Vault.sol", "Vault.positive", ""),
        ("Inventory.fs", "Shop.Inventory.Item", "An item in stock: its code and how many there are."),
        ("Inventory.fs", "Shop.Inventory.Stock.Count", "How many items with this code are in stock."),
        ("Inventory.fs", "Shop.Inventory.add", "Add an item in front of the stock, keeping the others."),
        ("Inventory.fs", "Shop.Inventory.Report.lines", "Lines of a report, one per item."),
        ("Inventory.fsi", "Shop.Inventory.add", "Add an item in front of the stock, keeping the others."),
        # comment-based help above a function or at the top of its body; .PARAMETER and the like as tag lines
        ("Deploy.ps1", "Copy-Build", "Copies the build output to the deployment share.\n\n@parameter Target\n"
                                     "    The share to copy to."),
        ("Deploy.ps1", "Get-DeployTarget", "Gets the share of an environment from the settings file."),
        ("Deploy.ps1", "DeployLog.Add", "Add one line to the log, stamped with the time."),
        # MATLAB's help: the % block right under the function line
        ("moving_average.m", "moving_average", "MOVING_AVERAGE Average of each window of WIDTH values.\n"
                                               "AVG = MOVING_AVERAGE(V, W) slides a window of W values over V."),
        ("moving_average.m", "clamp", "Keep x between lo and hi."),
        ("saxpy.cu", "blas.saxpy", "Compute y = a * x + y over n elements, one thread per element."),
        ("saxpy.cu", "run_saxpy", "Launch saxpy on the device and wait for it."),
        ("vectors.f90", "vectors", "Vector utilities."),
        ("vectors.f90", "vectors.norm", "Euclidean norm of a vector of reals."),
        ("vectors.f90", "vectors.scale", "Scale a vector in place by a factor."),
        ("vectors.f90", "demo", ""),
    ],
)
def test_doc_comment_is_recorded_without_comment_markers(name: str, chunk: str, doc: str) -> None:
    chunks = chunks_of(name)
    matches = [c for c in chunks if c.name == chunk and c.kind != "block"]
    assert matches[0].doc == doc


def test_doc_comments_above_definitions_are_not_repeated_in_blocks() -> None:
    blocks = [c.text for c in chunks_of("shapes.go") if c.kind == "block"]
    assert not any("Area returns" in text or "Describe formats" in text for text in blocks)
    # ...but a comment above something that is not a chunk stays in its block.
    assert any("// Pi is re-exported for callers." in text for text in blocks)


# -- what a chunk covers ----------------------------------------------------------------------------------


def test_decorators_attributes_and_export_belong_to_the_definition() -> None:
    assert by_name(chunks_of("config_parser.py"), "ConfigParser.section_names").text.startswith("@property\n")
    assert by_name(chunks_of("config_parser.py"), "Section", "class").text.startswith(
        "@dataclass\nclass Section:"
    )
    assert by_name(chunks_of("inventory.rs"), "Item").text.startswith(
        "#[derive(Debug, Clone)]\npub struct Item"
    )
    assert by_name(chunks_of("inventory.rs"), "tests.starts_empty").text.startswith("#[test]\n")
    assert by_name(chunks_of("http_client.ts"), "HttpClient", "class").text.startswith(
        "export class HttpClient"
    )
    assert by_name(chunks_of("matrix.cpp"), "linalg.trace").text.startswith("template <typename T>\nT trace(")
    assert by_name(chunks_of("BankAccount.java"), "BankAccount.withdraw").text.startswith(
        '@SuppressWarnings("unused")\n'
    )


def test_functions_nested_in_functions_stay_inside_their_parent() -> None:
    chunks = chunks_of("config_parser.py")
    assert not any(c.name.endswith("flush") for c in chunks)
    assert "def flush() -> None:" in by_name(chunks, "ConfigParser.parse").text
    # the arrow function assigned inside createLoggingBus is not a chunk of its own either
    assert [c.name for c in chunks_of("event_bus.js") if "emit" in c.name] == ["EventBus.emit"]


def test_class_chunk_keeps_header_fields_and_signatures_but_not_method_bodies() -> None:
    parser_class = by_name(chunks_of("config_parser.py"), "ConfigParser", "class")
    assert parser_class.text == (
        "class ConfigParser:\n"
        '    """Read sections and key/value pairs from text."""\n'
        "\n"
        '    comment_prefixes = ("#", ";")\n'
        "\n"
        "    def __init__(self, path: str) -> None: ...\n"
        "\n"
        "    @property\n"
        "    def section_names(self) -> list[str]: ...\n"
        "\n"
        "    def parse(self, text: str) -> dict[str, Section]: ...\n"
    ).rstrip("\n")
    # its range still spans the whole class
    assert (parser_class.start_line, parser_class.end_line) == (31, 68)


@pytest.mark.parametrize(
    ("name", "chunk", "kept", "dropped"),
    [
        (
            "event_bus.js",
            "EventBus",
            ["listeners = new Map();", "on(name, handler) { ... }"],
            ["handlers.push"],
        ),
        (
            "http_client.ts",
            "HttpClient",
            [
                "private readonly baseUrl: URL;",
                "async getJson<T>(path: string, options: RequestOptions = {}): Promise<T> { ... }",
            ],
            ["await fetch"],
        ),
        (
            "inventory.rs",
            "Restock",
            ["fn restock(&mut self, amount: u32);", "fn is_empty(&self) -> bool { ... }"],
            ["false"],
        ),
        (
            "BankAccount.java",
            "BankAccount",
            ["private long balanceCents;", "public enum StatementKind { ... }"],
            ["history.add", "MONTHLY"],
        ),
        (
            "matrix.cpp",
            "linalg.Matrix",
            ["Matrix multiply(const Matrix &other) const;", "std::vector<double> data_;"],
            ["cols_ + c]"],
        ),
        (
            "library.rb",
            "Lending.Book",
            ["attr_reader :title, :due_date", "def lend(today = Date.today) ... end"],
            ["raise"],
        ),
        ("library.rb", "Lending", ["module Lending", "class Book ... end"], ["attr_reader"]),
        (
            "OrderService.cs",
            "Shop.Orders.OrderService",
            ["public string Name { get; set; }", "public int Count { ... }", "public int Place(Order order) { ... }",
             "public long Total() => ...;", "public record Line(string Sku, int Quantity);"],
            ["_orders.Add", "_orders.Sum"],
        ),
        (
            "Cart.php",
            "Shop.Cart.Cart",
            ["private array $items = [];", "public function add(Product $product, int $quantity = 1): void { ... }",
             "abstract protected function persist(): void;"],
            ["$sku ="],
        ),
        (
            "TaskQueue.kt",
            "TaskQueue",
            ["private val tasks = ArrayDeque<Task>()", "fun offer(task: Task): Boolean { ... }", "val isEmpty: Boolean ...",
             "fun poll(): Task? = ...", "companion object { ... }"],
            ["tasks.add", "pollFirst", "isEmpty()"],
        ),
        (
            "Thermostat.swift",
            "Thermostat",
            ["private(set) var target: Double", "var isHeating: Bool { ... }", "init(target: Double) { ... }",
             "enum Mode: String { ... }"],
            ["min(max", "case off"],
        ),
        (
            "WordCount.scala",
            "WordCount",
            ["def add(line: String): Unit = ...", "def top(n: Int): Seq[(String, Int)] = ...", "def reset(): Unit"],
            ["getOrElse", "sortBy"],
        ),
    ],
)
def test_class_chunks_in_every_language_omit_member_bodies(
    name: str, chunk: str, kept: list[str], dropped: list[str]
) -> None:
    # the first of its name: a Swift extension or Scala companion object after it is a class chunk of that name too
    text = next(c for c in chunks_of(name) if c.name == chunk and c.kind == "class").text
    for piece in kept:
        assert piece in text
    for piece in dropped:
        assert piece not in text


def test_rust_impl_blocks_and_trait_impls_name_methods_after_the_type() -> None:
    chunks = chunks_of("inventory.rs")
    assert by_name(chunks, "Inventory.fmt").kind == "method"
    impls = [c.text.splitlines()[0] for c in chunks if c.name == "Inventory" and c.kind == "class"]
    assert impls == ["pub struct Inventory {", "impl Inventory {", "impl fmt::Display for Inventory {"]


def test_block_chunks_hold_module_level_code() -> None:
    first, last = (c for c in chunks_of("config_parser.py") if c.kind == "block")
    assert first.text.startswith('"""Parse simple INI-style configuration files."""\n\nimport os\n')
    assert first.text.endswith('DEFAULT_SECTION = "main"')
    assert last.text == 'if __name__ == "__main__":\n    print(load_config("settings.ini").section_names)'


# -- other languages and odd inputs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "source", "expected"),
    [
        (
            "javascript",
            "Foo.prototype.bar = function () {};\nexports.baz = () => 2;\nconst o = { m() { return 1; } };\n",
            [("method", "Foo.bar", 1, 1), ("function", "baz", 2, 2), ("block", "snippet", 3, 3),
             ("method", "o.m", 3, 3)],
        ),
        (
            "javascript",
            "var app = module.exports = {\n  handle: function (req) {},\n  use(fn) {}\n};\n"
            "function Router() {\n  this.route = function (p) {};\n}\nmodule.exports.json = function () {};\n",
            [("block", "snippet", 1, 1), ("method", "app.handle", 2, 2), ("method", "app.use", 3, 3),
             ("function", "Router", 5, 7), ("method", "Router.route", 6, 6),
             ("function", "json", 8, 8)],
        ),
        (
            "go",
            "package p\n\ntype (\n\tA struct{ x int }\n\tB interface{ M() }\n)\n",
            [("block", "snippet", 1, 3), ("class", "A", 4, 4), ("class", "B", 5, 5)],
        ),
        (
            "cpp",
            "struct A { A &operator=(const A &); };\nA &A::operator=(const A &o) { return *this; }\nint *A::get() { return 0; }\n",
            [("class", "A", 1, 1), ("method", "A.operator=", 2, 2), ("method", "A.get", 3, 3)],
        ),
        (
            "python",
            "class A:\n    class B:\n        def f(self):\n            def g():\n                pass\n",
            [("class", "A", 1, 5), ("class", "A.B", 2, 5), ("method", "A.B.f", 3, 5)],
        ),
        ("ruby", "def Config.load(path)\n  new(path)\nend\n", [("method", "Config.load", 1, 3)]),
    ],
)
def test_snippets(language: str, source: str, expected: list[tuple[str, str, int, int]]) -> None:
    assert outline(chunk_source("snippet.x", source.encode(), language)) == expected


def _outline_docs(path: str, source: str, language: str) -> list[tuple[str, str, int, str]]:
    return [(c.kind, c.name, c.start_line, c.doc) for c in chunk_source(path, source.encode(), language)]


def test_a_cpp_header_named_dot_h_is_read_as_cpp_and_a_c_one_as_c() -> None:
    from codeneedle.indexer.languages import language_for_source

    cpp = "namespace util {\n/// Clamp a value.\ntemplate <typename T> T clamp(T v) { return v; }\n}\n"
    assert language_for_source("util.h", cpp.encode()) == "cpp"
    assert [c for c in _outline_docs("util.h", cpp, "cpp") if c[0] != "block"] == [
        ("function", "util.clamp", 3, "Clamp a value.")]
    c = '#ifdef __cplusplus\nextern "C" {\n#endif\n/** Add two numbers. */\nint add(int a, int b);\n'
    assert language_for_source("math.h", c.encode()) == "c"
    assert language_for_source("notes.txt", cpp.encode()) is None


def test_a_slash_star_inside_a_block_comment_does_not_cut_the_doc_off() -> None:
    source = ("/**\n * Registers a handler; a path like /api/* matches one segment.\n */\n"
              "export function register(path: string): void {}\nlet x = 1; /* a trailing note */\nfunction g() {}\n")
    assert _outline_docs("a.ts", source, "typescript") == [
        ("function", "register", 4, "Registers a handler; a path like /api/* matches one segment."),
        ("block", "a", 5, ""), ("function", "g", 6, "")]


def test_a_tool_annotation_between_a_doc_comment_and_its_function_is_passed_over() -> None:
    source = ("/** Get the object a draft stands for. */\n/*#__PURE__*/\nexport function original(v: any): any {\n"
              "  return v;\n}\n")
    (chunk,) = chunk_source("a.ts", source.encode(), "typescript")
    assert (chunk.name, chunk.doc, chunk.doc_start_line, chunk.doc_end_line) == (
        "original", "Get the object a draft stands for.", 1, 2)


def test_typescript_overloads_share_their_doc_with_the_implementation() -> None:
    source = ("/** Parse a value. */\nexport function parse(a: string): number;\n"
              "export function parse(a: number): number;\nexport function parse(a: any): number { return +a; }\n")
    implementation = chunk_source("p.ts", source.encode(), "typescript")[-1]
    assert (implementation.start_line, implementation.leading_doc) == (4, "Parse a value.")


def test_a_docstring_in_a_crlf_file_has_no_carriage_returns() -> None:
    source = 'def f():\r\n    """Doc\r\n\r\n    more\r\n    """\r\n    return 1\r\n'
    assert _outline_docs("a.py", source, "python") == [("function", "f", 1, "Doc\n\nmore")]


@pytest.mark.parametrize(("path", "source", "expected"), [
    ("lib/checked.js", "/** Check a result. */\nmodule.exports = function checked(result) {\n  return result;\n};\n",
     [("function", "checked", 2, "Check a result.")]),
    ("lib/util/index.js", "/** Default helper. */\nexport default function () {\n  return 1;\n}\n",
     [("function", "util", 2, "Default helper.")]),
    ("src/shelf.ts", "export default class {\n  add(b: string) { return b; }\n}\nconst Foo = class {\n  bar() {}\n};\n",
     [("class", "shelf", 1, ""), ("method", "shelf.add", 2, ""), ("class", "Foo", 4, ""),
      ("method", "Foo.bar", 5, "")]),
])
def test_javascript_written_without_a_name_is_named_after_its_function_or_file(path, source, expected) -> None:
    language = "typescript" if path.endswith(".ts") else "javascript"
    assert _outline_docs(path, source, language) == expected


@pytest.mark.parametrize(("path", "language", "source", "expected"), [
    ("lib.rs", "rust",
     "/// Build a map from pairs.\nmacro_rules! indexmap {\n    () => {};\n}\n\n/// What parsing gives.\n"
     "pub type ParseResult<T> = Result<T, Error>;\n",
     [("function", "indexmap", 2, "Build a map from pairs."), ("class", "ParseResult", 7, "What parsing gives.")]),
    ("opts.ts", "typescript",
     "/** Options of a virtualizer. */\nexport type VirtualOptions = {\n  count: number;\n};\n",
     [("class", "VirtualOptions", 2, "Options of a virtualizer.")]),
    ("mux.go", "go",
     "package mux\n\n// MiddlewareFunc wraps a handler.\ntype MiddlewareFunc func(h Handler) Handler\n\n"
     "type (\n\t// Level is a logging level.\n\tLevel int\n\t// Lvl is Level.\n\tLvl = Level\n)\n",
     [("block", "mux", 1, ""), ("class", "MiddlewareFunc", 4, "MiddlewareFunc wraps a handler."),
      ("block", "mux", 6, ""), ("class", "Level", 8, "Level is a logging level."), ("class", "Lvl", 10, "Lvl is Level.")]),
    ("iter.rs", "rust",
     "impl Iterator for Counter {\n    type Item = u32;\n    fn next(&mut self) -> Option<u32> { None }\n}\n",
     [("class", "Counter", 1, ""), ("method", "Counter.next", 3, "")]),
    ("sig.c", "c", "void (*on_signal)(int sig);\nint first(void);\n",
     [("block", "sig", 1, ""), ("function", "first", 2, "")]),
    ("tree.h", "c",
     "/* Parse a buffer into a tree. */\nstruct node *parse_buffer(const char *buf);\n\n/* Free a tree. */\n"
     "void free_tree(struct node *n);\n\n/* Clamp a value. */\n#define CLAMP(x, lo, hi) ((x) < (lo) ? (lo) : (x))\n",
     [("function", "parse_buffer", 2, "Parse a buffer into a tree."), ("function", "free_tree", 5, "Free a tree."),
      ("function", "CLAMP", 8, "Clamp a value.")]),
    # sqlite3.h and z3_api.h: a callback's type is a named chunk with its doc; a plain typedef stays in its block
    ("sqlite3.h", "c",
     "/*\n** The type for a callback function.\n*/\ntypedef int (*sqlite3_callback)(void*,int,char**, char**);\n"
     "/** Z3 custom error handler. */\ntypedef void Z3_error_handler(Z3_context c, Z3_error_code e);\n"
     "typedef unsigned long long sqlite3_uint64;\n",
     [("class", "sqlite3_callback", 4, "The type for a callback function."),
      ("class", "Z3_error_handler", 6, "Z3 custom error handler."), ("block", "sqlite3", 7, "")]),
    ("geo.cpp", "cpp",
     "namespace geo {\n/// Area of a shape.\ndouble area(const Shape &s);\n#define SQ(x) ((x) * (x))\n"
     "int helper(int x) {\n  int inner(int);\n  return inner(x);\n}\n}\n",
     [("block", "geo", 1, ""), ("function", "geo.area", 3, "Area of a shape."), ("function", "SQ", 4, ""),
      ("function", "geo.helper", 5, "")]),
])
def test_macros_type_aliases_named_types_and_prototypes_are_named_chunks(path, source, language, expected) -> None:
    """A user searches these by name: none of them is left inside an anonymous window."""
    assert _outline_docs(path, source, language) == expected


@pytest.mark.parametrize("language", ["javascript", "typescript"])
def test_properties_defined_by_a_call_are_named_after_their_object_with_their_doc(language) -> None:
    # express's request.js: the doc comment sits above the call, the getter inside it is nameless or named "get".
    source = ("/** Return the protocol string. */\nObject.defineProperty(req, 'protocol', {\n  configurable: true,\n"
              "  get: function () { return 'http'; }\n});\n\n/** Whether the request is fresh. */\n"
              "defineGetter(req, 'fresh', function () {\n  return !this.stale;\n});\n\n"
              "Object.defineProperty(Foo.prototype, \"size\", { get() { return this._n; } });\n"
              "app.get('/users', auth, function (req, res) {});\n"
              "fs.readFile(configPath, 'utf8', function (err, data) {});\n"
              "Object.defineProperty(exports, '__esModule', { value: true });\n")
    assert _outline_docs("lib/request.js", source, language) == [
        ("method", "req.protocol", 2, "Return the protocol string."),
        ("method", "req.fresh", 8, "Whether the request is fresh."),
        ("method", "Foo.size", 12, ""),
        ("block", "request", 13, ""),  # a route, a callback and a compiler's marker define no property
    ]


def test_each_prototype_of_a_declaration_with_several_is_a_chunk_of_its_own() -> None:
    # tirpc's rpc/auth.h and X11's Xos_r.h: one declaration, several functions; each is found by its name (a stub
    # leads to its implementation by name), the declaration's range and doc comment shared
    source = ("/* Placeholder wrappers for AUTH_NONE. */\nint authany_wrap(void), authany_unwrap(void);\n"
              "extern struct passwd *getpwuid(), *getpwnam();\nint count, total(int);\n")
    for language in ("c", "cpp"):
        assert _outline_docs("auth.h", source, language) == [
            ("function", "authany_wrap", 2, "Placeholder wrappers for AUTH_NONE."),
            ("function", "authany_unwrap", 2, "Placeholder wrappers for AUTH_NONE."),
            ("function", "getpwuid", 3, ""), ("function", "getpwnam", 3, ""), ("function", "total", 4, "")]


def test_a_typedef_struct_is_one_chunk_with_its_fields_and_doc() -> None:
    source = "/** A list node. */\ntypedef struct node_s {\n    int v;\n    struct node_s *next;\n} node_t;\n"
    for language in ("c", "cpp"):
        (chunk,) = chunk_source("list.h", source.encode(), language)
        assert (chunk.kind, chunk.name, chunk.doc) == ("class", "node_t", "A list node.")
        assert "int v;" in chunk.text


def test_rust_impls_for_slices_and_type_parameters_are_named_apart_from_real_types() -> None:
    source = ("impl<T: Buf + ?Sized> Buf for &mut T {\n    fn remaining(&self) -> usize { 0 }\n}\n"
              "impl Buf for &[u8] {\n    fn remaining(&self) -> usize { 0 }\n}\n")
    names = [c.name for c in chunk_source("buf.rs", source.encode(), "rust") if c.kind == "method"]
    assert names == ["Buf.remaining", "[u8].remaining"]


def test_recovery_does_not_cut_a_cpp_class_at_its_access_labels() -> None:
    source = ("#ifdef DENSE\nnamespace svm {\n#endif\n\nclass Kernel {\npublic:\n  double dot(int i) const { return i; }"
              "\n\nprivate:\n  int n;\n  double linear(int i) const { return 2 * i; }\n};\n")
    assert [(c.kind, c.name) for c in chunk_source("svm.cpp", source.encode(), "cpp") if c.kind != "block"] == [
        ("class", "Kernel"), ("method", "Kernel.dot"), ("method", "Kernel.linear")]


def test_syntax_errors_do_not_stop_a_file() -> None:
    source = b"def ok(a):\n    return a\n\ndef broken(:\n    return ]\n\nclass Fine:\n    def m(self):\n        pass\n"
    names = {c.name for c in chunk_source("bad.py", source, "python")}
    assert {"ok", "Fine", "Fine.m"} <= names


@pytest.mark.parametrize(("language", "source", "expected"), [
    ("python", "def broken(a, b:\n    return a +\n\nclass Fine:\n    def kept(self):\n        \'\'\'Still found.\'\'\'\n"
               "        return 42\n",
     [("block", "bad", 1, 2), ("class", "Fine", 4, 7), ("method", "Fine.kept", 5, 7)]),
    ("javascript", "function unclosed( {\n  return 1;\n}\n/** Found after junk. */\nfunction after() { return 2 }\n",
     [("block", "bad", 1, 3), ("function", "after", 5, 5)]),
])
def test_an_unclosed_bracket_does_not_swallow_the_definitions_after_it(language, source, expected) -> None:
    data = source.encode()
    chunks = chunk_source("bad.x", data, language)
    assert outline(chunks) == expected
    for c in chunks:  # positions are the file's, not the piece's
        assert data[c.start_byte:c.end_byte].decode() == c.text or c.kind == "class"
        assert data.decode().splitlines()[c.start_line - 1].strip().startswith(c.text.splitlines()[0].strip())
    documented = [c for c in chunks if c.doc]
    assert [(c.doc, c.doc_start_line) for c in documented] == (
        [("Still found.", 6)] if language == "python" else [("Found after junk.", 4)])


def test_a_block_left_by_an_object_literal_s_methods_starts_at_code() -> None:
    source = b"const strings = {\n  kebab(s) { return s; },\n};\n\nmodule.exports.strings = strings;\n"
    blocks = [c for c in chunk_source("util.js", source, "javascript") if c.kind == "block"]
    assert [(c.text, c.start_line) for c in blocks] == [("const strings = {", 1),
                                                        ("module.exports.strings = strings;", 5)]


def test_other_text_falls_back_to_line_windows() -> None:
    lines = [f"line {i}" for i in range(1, 101)]
    data = ("\n".join(lines) + "\n").encode()
    chunks = chunk_source("docs/notes.md", data, None)
    assert [(c.kind, c.name, c.language, c.start_line, c.end_line) for c in chunks] == [
        ("text", "notes.md", "text", 1, WINDOW_LINES),
        ("text", "notes.md", "text", WINDOW_LINES + 1, 2 * WINDOW_LINES),
        ("text", "notes.md", "text", 2 * WINDOW_LINES + 1, 100),
    ]
    assert chunks[0].text == "\n".join(lines[:WINDOW_LINES])


def test_whitespace_only_windows_are_skipped() -> None:
    data = b"title\n" + b"\n" * 100 + b"   \n\t\n" + b"end\n"
    chunks = chunk_source("notes.txt", data, None)
    assert [(c.text, c.start_line) for c in chunks] == [("title", 1), ("end", 104)]


def test_empty_and_undecodable_files() -> None:
    assert chunk_source("empty.py", b"", "python") == []
    assert chunk_source("empty.txt", b"", None) == []
    latin1 = "def café():\n    '''déjà vu'''\n".encode("latin-1")
    (chunk,) = chunk_source("old.py", latin1, "python")
    assert chunk.name.startswith("caf") and "\ufffd" in chunk.text
    assert chunk.doc == "d\ufffdj\ufffd vu"


@pytest.mark.parametrize("codec", ["latin-1", "cp1252", "shift_jis"])
def test_a_python_file_in_its_declared_encoding_keeps_its_names_and_its_byte_ranges(codec) -> None:
    name = "単価" if codec == "shift_jis" else "café_price"
    source = f"# -*- coding: {codec} -*-\n\ndef {name}(x):\n    \"\"\"Price of one {name} order.\"\"\"\n    return x\n"
    data = source.encode(codec)
    (chunk,) = [c for c in chunk_source("menu.py", data, "python") if c.kind == "function"]
    assert (chunk.name, chunk.start_line, chunk.end_line) == (name, 3, 5)
    assert chunk.doc == f"Price of one {name} order." and "\ufffd" not in chunk.text
    assert data[chunk.start_byte:chunk.end_byte].decode(codec) == source[source.index("def"):].rstrip()
    assert data[chunk.doc_start_byte:chunk.doc_end_byte].decode(codec).strip('"') == chunk.doc
    # a cookie that does not hold (an unknown codec) is read as before: UTF-8 with replacement characters
    (old,) = [c for c in chunk_source("old.py", data.replace(codec.encode(), b"klingon"), "python")
              if c.kind == "function"]
    assert "\ufffd" in old.text


@pytest.mark.parametrize("codec", ["hex", "base64", "rot13", "undefined", "utf-16"])
def test_a_cookie_naming_a_codec_python_could_not_read_source_in_is_ignored(codec) -> None:
    data = f"# -*- coding: {codec} -*-\ndef café(x):\n    return x\n".encode("latin-1")
    (chunk,) = [c for c in chunk_source("odd.py", data, "python") if c.kind == "function"]  # never raises
    assert chunk.start_line == 2 and "\ufffd" in chunk.text


def test_a_codec_with_one_code_for_two_characters_maps_every_range_back() -> None:
    # shift_jis_2004 writes か + a combining mark as one code: each character cannot be encoded on its own
    name = "か\u309aの関数"
    source = f"# coding: shift_jis_2004\n\ndef f():\n    \"\"\"{name} を返す。\"\"\"\n    return '{name}'\n"
    data = source.encode("shift_jis_2004")
    (chunk,) = [c for c in chunk_source("jp.py", data, "python") if c.kind == "function"]
    assert data[chunk.start_byte:chunk.end_byte].decode("shift_jis_2004") == source[source.index("def"):].rstrip()
    assert chunk.doc == f"{name} を返す。"


def test_huge_function_keeps_its_range_but_caps_its_text() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(3000))
    data = f"def big():\n{body}".encode()
    (chunk,) = chunk_source("big.py", data, "python")
    assert (chunk.start_line, chunk.end_line, chunk.end_byte) == (1, 3001, len(data.rstrip()))
    assert len(chunk.text.encode()) <= MAX_TEXT_BYTES
    assert data.decode().startswith(chunk.text)


def test_one_huge_line_is_one_capped_window() -> None:
    data = b"x" * (3 * MAX_TEXT_BYTES) + b"\nshort\n"
    chunks = chunk_source("blob.txt", data, None)
    assert [(c.start_line, c.end_line, c.end_byte - c.start_byte) for c in chunks] == [
        (1, 1, 3 * MAX_TEXT_BYTES),
        (2, 2, 5),
    ]
    assert len(chunks[0].text) == MAX_TEXT_BYTES


def test_deep_nesting_does_not_recurse() -> None:
    depth = 10_000
    data = b"function f() {" * depth + b"}" * depth
    chunks = chunk_source("deep.js", data, "javascript")
    assert [(c.kind, c.name) for c in chunks] == [("function", "f")]


def test_files_over_the_parse_limit_become_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunker, "MAX_PARSE_BYTES", 10)
    chunks = chunk_source("a.py", b"def f():\n    return 1\n", "python")
    assert [(c.kind, c.language, c.name) for c in chunks] == [("block", "python", "a")]


def test_unexpected_failure_falls_back_to_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(self: object) -> list[Chunk]:
        raise RuntimeError("boom")

    monkeypatch.setattr(chunker._Source, "chunk_code", explode)
    chunks = chunk_source("a.py", b"def f():\n    return 1\n", "python")
    assert [(c.kind, c.start_line, c.end_line) for c in chunks] == [("text", 1, 2)]


@pytest.mark.parametrize(("path", "language", "source", "expected"), [
    # a file-scoped namespace qualifies what follows it; an auto-property and an interface method are no chunks; a
    # doc comment under an attribute is found; XML references read as their names
    ("Runner.cs", "csharp",
     "namespace Acme.Tools;\n\npublic interface IRunner { void Run(int n); }\n\npublic class Runner : IRunner\n{\n"
     "    public int Retries { get; set; } = 3;\n\n    [Obsolete]\n"
     '    /// <summary>Run <paramref name="n"/> times; see <see cref="T:Acme.Tools.IRunner"/>.</summary>\n'
     "    public void Run(int n) { }\n\n    /// <summary>Whether it ran.</summary>\n    public bool Done => true;\n}\n",
     [("block", "t", 1, ""), ("class", "Acme.Tools.IRunner", 3, ""), ("class", "Acme.Tools.Runner", 5, ""),
      ("method", "Acme.Tools.Runner.Run", 9, "Run n times; see Acme.Tools.IRunner."),
      ("method", "Acme.Tools.Runner.Done", 14, "Whether it ran.")]),
    # `namespace A;` holds up to the next namespace statement; a braced one up to its brace
    ("multi.php", "php",
     "<?php\nnamespace A;\nfunction f() {}\nnamespace B;\nfunction f() {}\nnamespace C {\n"
     "  class K { function m() {} }\n}\n",
     [("block", "t", 1, ""), ("function", "A.f", 3, ""), ("block", "t", 4, ""), ("function", "B.f", 5, ""),
      ("block", "t", 6, ""), ("class", "C.K", 7, ""), ("method", "C.K.m", 7, "")]),
    # a named companion object; a secondary constructor; an extension property with a getter
    ("Temp.kt", "kotlin",
     "class Temp(val c: Double) {\n    constructor(f: Int) : this((f - 32) / 1.8)\n\n    companion object Factory {\n"
     "        /** Zero degrees. */\n        fun zero() = Temp(0.0)\n    }\n}\n\n/** Degrees Fahrenheit. */\n"
     "val Temp.fahrenheit: Double\n    get() = c * 1.8 + 32\n",
     [("class", "Temp", 1, ""), ("method", "Temp.constructor", 2, ""), ("class", "Temp.Factory", 4, ""),
      ("method", "Temp.Factory.zero", 6, "Zero degrees."), ("method", "Temp.fahrenheit", 11, "Degrees Fahrenheit.")]),
    # an operator; a protocol requirement stays in the protocol; an extension of a nested type
    ("Vec.swift", "swift",
     "struct Vec {\n    var x: Double\n\n    /// Add two vectors.\n"
     "    static func + (a: Vec, b: Vec) -> Vec { Vec(x: a.x + b.x) }\n}\n\n"
     "protocol Scalable { func scaled(by k: Double) -> Self }\n\nextension Vec.Unit: Scalable {\n"
     "    func scaled(by k: Double) -> Vec.Unit { self }\n}\n",
     [("class", "Vec", 1, ""), ("method", "Vec.+", 5, "Add two vectors."), ("class", "Scalable", 8, ""),
      ("class", "Vec.Unit", 10, ""), ("method", "Vec.Unit.scaled", 11, "")]),
    # Scala 3: an extension names its methods after the extended type; a type alias
    ("Syntax.scala", "scala",
     "object Syntax:\n  /** Shout a string. */\n  extension (s: String)\n    def shout: String = s.toUpperCase\n\n"
     "  type Row = Map[String, Any]\n",
     [("class", "Syntax", 1, ""), ("class", "Syntax.String", 3, "Shout a string."),
      ("method", "Syntax.String.shout", 4, ""), ("class", "Syntax.Row", 6, "")]),
    # a function assigned to a local; a method of a nested table
    ("fmt.lua", "lua",
     "--- Format a value.\nlocal fmt = function(v) return tostring(v) end\n\nfunction a.b.c:d() end\n",
     [("function", "fmt", 2, "Format a value."), ("method", "a.b.c.d", 4, "")]),
])
def test_namespaces_extensions_companions_and_properties(path, language, source, expected) -> None:
    assert _outline_docs("t.x", source, language) == expected


def test_csharp_indexers_operators_conversions_finalizers_and_events_are_methods_named_as_written() -> None:
    # pythonnet's PyObject and edge-js's SemVersion: members without an identifier, each with its `///` doc
    source = ("namespace Semver\n{\n    public sealed class SemVersion\n    {\n"
              "        /// <summary>Item at <paramref name=\"index\"/>.</summary>\n"
              "        public virtual PyObject this[int index]\n        {\n            get { return GetItem(index); }\n"
              "            set { SetItem(index, value); }\n        }\n\n"
              "        public T this[string key] => Get(key);\n\n"
              "        public abstract T this[long index] { get; }\n\n"
              "        /// <summary>Compares two versions for equality.</summary>\n"
              "        public static bool operator ==(SemVersion left, SemVersion right) => Equals(left, right);\n\n"
              "        /// <summary>Parses a version string.</summary>\n"
              "        public static implicit operator SemVersion(string version) => Parse(version);\n\n"
              "        public static explicit operator int(SemVersion v) { return v.Major; }\n\n"
              "        /// <summary>Releases the Python object.</summary>\n"
              "        ~SemVersion() { Dispose(false); }\n\n"
              "        /// <summary>Raised on a change.</summary>\n"
              "        public event EventHandler Changed { add { handlers += value; } remove { handlers -= value; } }\n"
              "\n        public event EventHandler Plain;\n    }\n}\n")
    chunks = chunk_source("SemVersion.cs", source.encode(), "csharp")
    assert [(c.kind, c.name, c.start_line, c.doc) for c in chunks if c.kind != "block"] == [
        ("class", "Semver.SemVersion", 3, ""),
        ("method", "Semver.SemVersion.this[]", 6, "Item at index."),
        ("method", "Semver.SemVersion.this[]", 12, ""),  # an overload; the abstract one (no code) stays in its class
        ("method", "Semver.SemVersion.operator==", 17, "Compares two versions for equality."),
        ("method", "Semver.SemVersion.implicit operator SemVersion", 20, "Parses a version string."),
        ("method", "Semver.SemVersion.explicit operator int", 22, ""),
        ("method", "Semver.SemVersion.~SemVersion", 25, "Releases the Python object."),
        ("method", "Semver.SemVersion.Changed", 28, "Raised on a change."),  # a field-like event is no chunk
    ]
    assert "public static bool operator ==(SemVersion left, SemVersion right) => ...;" in chunks[1].text
    assert "~SemVersion() { ... }" in chunks[1].text


def test_csharp_explicit_interface_implementations_are_named_through_their_interface() -> None:
    # pythonnet's PyIterable and LibDL: the untyped GetEnumerator beside the typed one, an interface's dlopen beside
    # the extern dlopen it calls
    source = ("class PyIterable : IEnumerable<PyObject>\n{\n    /// <summary>Iterates the Python object.</summary>\n"
              "    public IEnumerator<PyObject> GetEnumerator() { return new PyIter(this); }\n\n"
              "    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();\n\n"
              "    object IEnumerator.Current => Current;\n\n"
              "    IntPtr ILibDL.dlopen(string? fileName, int flags) => dlopen(fileName, flags);\n\n"
              "    private static extern IntPtr dlopen(string? fileName, int flags);\n}\n")
    assert [c[:3] for c in _outline_docs("PyIterable.cs", source, "csharp")] == [
        ("class", "PyIterable", 1),
        ("method", "PyIterable.GetEnumerator", 4),
        ("method", "PyIterable.IEnumerable.GetEnumerator", 6),
        ("method", "PyIterable.IEnumerator.Current", 8),
        ("method", "PyIterable.ILibDL.dlopen", 10),
    ]


def test_swift_subscripts_deinit_and_macros_are_named_and_symbol_operators_keep_their_names() -> None:
    # expo-modules-core's GenericTypedArray, Mutex, ValueOrUndefined and ExpoModulesMacros
    source = ("struct Buffer<T> {\n    /// The element at an index.\n    subscript(index: Int) -> T {\n"
              "        get { pointer[index] }\n        set { pointer[index] = newValue }\n    }\n\n"
              "    public subscript<K>(key: K) -> T { pointer[0] }\n\n    /// Frees the lock.\n"
              "    deinit { lock.deallocate() }\n\n    static func < (lhs: Buffer, rhs: Buffer) -> Bool { true }\n\n"
              "    static func `default`() -> Buffer { Buffer() }\n}\n\n"
              "protocol Indexed {\n    subscript(index: Int) -> Int { get set }\n}\n\n"
              "/// Makes a type decodable from JavaScript.\n@attached(extension, conformances: JavaScriptDecodable)\n"
              "public macro Record() = #externalMacro(module: \"ExpoModulesMacros\", type: \"RecordMacro\")\n")
    chunks = chunk_source("Buffer.swift", source.encode(), "swift")
    assert [(c.kind, c.name, c.start_line, c.doc) for c in chunks] == [
        ("class", "Buffer", 1, ""),
        ("method", "Buffer.subscript", 3, "The element at an index."),
        ("method", "Buffer.subscript", 8, ""),
        ("method", "Buffer.deinit", 11, "Frees the lock."),
        ("method", "Buffer.<", 13, ""),  # not "<anonymous>": a name of symbols is no generic type's opening
        ("method", "Buffer.default", 15, ""),  # without its backticks
        ("class", "Indexed", 18, ""),  # a protocol's requirement stays in the protocol
        ("function", "Record", 23, "Makes a type decodable from JavaScript."),  # used as @Record, like a call
    ]
    assert "subscript(index: Int) -> T { ... }" in chunks[0].text


def test_lua_functions_in_named_or_returned_tables_are_named_after_the_table() -> None:
    # penlight's seq.lua and types.lua, busted's utils.lua: tables of functions, a metatable given to a call
    source = ("local M = {\n  --- Add two numbers.\n  add = function(a, b) return a + b end,\n"
              "  util = {\n    -- Trim a string.\n    trim = function(s) return s end,\n  },\n  version = '1.0',\n}\n\n"
              "M.sub = function(a, b) return a - b end\n\nM.more = { mul = function(a, b) return a * b end }\n\n"
              "local colors = setmetatable({}, { __index = function() return tostring end })\n\n"
              "return {\n  --- Shuffle a list in place.\n  shuffle = function(t, seed) return t end,\n}\n")
    assert _outline_docs("util.lua", source, "lua") == [
        ("block", "util", 1, ""),
        ("method", "M.add", 3, "Add two numbers."),
        ("block", "util", 4, ""),
        ("method", "M.util.trim", 6, "Trim a string."),
        ("block", "util", 8, ""),
        ("method", "M.sub", 11, ""),
        ("block", "util", 13, ""),
        ("method", "M.more.mul", 13, ""),
        ("block", "util", 15, ""),  # the metatable's __index is the call's detail
        ("function", "shuffle", 19, "Shuffle a list in place."),
    ]


def test_kotlin_members_of_a_companion_an_object_expression_or_an_enum_entry_are_named_apart_from_the_class_s() -> None:
    # react-native-screens: an event's getEventName beside its companion's, a listener object's callbacks, the
    # overrides of each enum entry; each was `Outer.name`, one name for two or more different functions
    source = ("class DidAppearEvent(surfaceId: Int) : Event<DidAppearEvent>(surfaceId), NamingAwareEventType {\n"
              "    override fun getEventName(): String = EVENT_NAME\n\n"
              "    private val animationListener: Animation.AnimationListener =\n"
              "        object : Animation.AnimationListener {\n"
              "            override fun onAnimationEnd(animation: Animation) {\n                finish()\n"
              "            }\n        }\n\n    fun onAnimationEnd() {}\n\n"
              "    companion object : NamingAwareEventType {\n        const val EVENT_NAME = \"topDidAppear\"\n\n"
              "        /** The name the event registers under. */\n        override fun getEventName() = EVENT_NAME\n"
              "    }\n}\n\nenum class InputTypes {\n    TEXT {\n        override fun toAndroidInputType() = 1\n"
              "    },\n    PHONE {\n        override fun toAndroidInputType() = 3\n    };\n\n"
              "    abstract fun toAndroidInputType(): Int\n}\n")
    assert [c[:3] for c in _outline_docs("DidAppearEvent.kt", source, "kotlin") if c[0] != "block"] == [
        ("class", "DidAppearEvent", 1),
        ("method", "DidAppearEvent.getEventName", 2),
        ("method", "DidAppearEvent.animationListener.onAnimationEnd", 6),
        ("method", "DidAppearEvent.onAnimationEnd", 11),
        ("class", "DidAppearEvent.Companion", 13),
        # as Java calls it; Kotlin code calls it DidAppearEvent.getEventName(), a search for that finds it
        ("method", "DidAppearEvent.Companion.getEventName", 17),
        ("class", "InputTypes", 21),
        ("method", "InputTypes.TEXT.toAndroidInputType", 23),
        ("method", "InputTypes.PHONE.toAndroidInputType", 26),
    ]


def test_csharp_xml_doc_tags_become_text_and_tag_lines() -> None:
    doc = chunker.clean_xml_doc(
        '<summary>\nParse <c>text</c> into a <see cref="T:Acme.Config"/>;\n<see langword="null"/> when empty.\n'
        '</summary>\n<param name="text">The text\nto parse.</param>\n<returns>The config.</returns>\n'
        '<exception cref="FormatException">When &lt;text&gt; is malformed.</exception>\n'
        '<remarks>Reads <paramref name="text"/> once.</remarks>')
    assert doc == ("Parse text into a Acme.Config;\nnull when empty.\n\n@param text The text\nto parse.\n"
                   "@returns The config.\n@throws FormatException When <text> is malformed.\n\nReads text once.")
    assert chunker.clean_xml_doc("Plain // comment with a < b.") == "Plain // comment with a < b."


@pytest.mark.parametrize(("path", "head", "language"), [
    ("bin/deploy", b"#!/bin/sh\nset -e\n", "bash"),
    ("scripts/build", b"#!/usr/bin/env bash\n", "bash"),
    ("gradlew", b"#!/usr/bin/env -S bash -e\n", "bash"),
    ("bin/tool", b"#!/usr/bin/env python3\n", None),
    ("bin/zshrc", b"#!/bin/zsh\n", None),
    ("notes.txt", b"#!/bin/sh\n", None),
    ("run.sh", b"echo hi\n", "bash"),
])
def test_a_script_without_an_extension_is_bash_by_its_shebang(path, head, language) -> None:
    from codeneedle.indexer.languages import language_for_source

    assert language_for_source(path, head) == language


PROLOG = b"""% Family relations.
:- module(family, [grandparent/2]).

parent(tom, bob).
grandparent(X, Z) :-
    parent(X, Y),
    parent(Y, Z).
"""
PERL_WITH_A_COLON_DASH = b"""use strict;
my %opts = (verbose => 0);
sub parse {
    my ($line) = @_;
    return $line =~ /^:-/ ? 1 : 0;
}
"""


@pytest.mark.parametrize(("path", "data", "language"), [
    ("family.pl", PROLOG, None),
    ("parse.pl", PERL_WITH_A_COLON_DASH, "perl"),
    ("Family.pm", PROLOG, "perl"),  # .pm is only ever Perl
    ("legacy.pl", b"$count = 0;\nprint \"hi\\n\";\n", "perl"),
])
def test_a_dot_pl_file_written_in_prolog_is_text_and_perl_stays_perl(path, data, language) -> None:
    from codeneedle.indexer.languages import language_for_source

    assert language_for_source(path, data) == language


def test_a_kotlin_annotation_the_grammar_leaves_beside_its_function_still_belongs_to_it() -> None:
    # after an expression-bodied function, tree-sitter-kotlin reads `@Suppress(...)` as an expression of its own
    source = ("fun a() = 1\n\n/** Begin a section. */\n@Suppress(\"NOTHING_TO_INLINE\")\ninline fun begin(tag: String) {\n"
              "  Trace.beginSection(tag)\n}\n")
    begin = by_name(chunk_source("t.kt", source.encode(), "kotlin"), "begin")
    assert (begin.start_line, begin.doc) == (4, "Begin a section.")
    assert begin.text.startswith('@Suppress("NOTHING_TO_INLINE")\ninline fun begin')


def test_lua_doc_comments_may_quote_long_strings_but_a_block_comment_is_no_doc() -> None:
    source = ("--- Escape a string for XML.\n-- @usage local esc = xml.xml_escape([[\"'<>&]])\nfunction M.xml_escape(str)\n"
              "  return str\nend\n\n--[[\n  Not a doc.\n--]]\nfunction M.other() end\n")
    assert _outline_docs("xml.lua", source, "lua") == [
        ("method", "M.xml_escape", 3, "Escape a string for XML.\n@usage local esc = xml.xml_escape([[\"'<>&]])"),
        ("block", "xml", 7, ""), ("method", "M.other", 10, "")]


def test_kotlin_cut_off_after_an_annotation_is_chunked_not_hung() -> None:
    """tree-sitter-kotlin 1.1.0 loops forever on a property, a line break and an annotation at the very end of a
    file (a file being typed), where no parse deadline reaches it: the parser is given a final line break. Run in a
    child process, so that a regression fails here instead of hanging the suite."""
    import subprocess
    import sys

    code = ("from codeneedle.indexer.chunker import chunk_source\n"
            "for s in (b'val x = 1\\n@A(1)', b'var x: Int\\n@Sync;', b'class C {\\n  val x = f()\\n  @A()'):\n"
            "    chunks = chunk_source('Cut.kt', s, 'kotlin')\n"
            "    assert chunks and all(c.end_byte <= len(s) for c in chunks), chunks\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_dart_function_runs_on_over_the_body_the_grammar_leaves_beside_its_signature() -> None:
    """tree-sitter-dart parses `int f() {...}` as a signature and then a function_body beside it: the chunk holds
    both, a function inside stays in it, an annotation belongs to its method, and a bodiless signature (abstract,
    `const Point(this.x)`) stays in its class."""
    source = ("abstract class Shape {\n  const Shape();\n  double area();\n\n  /// Scale by [k].\n  @override\n"
              "  Shape operator *(num k) => this;\n}\n\nextension on String {\n  bool get blank => isEmpty;\n}\n\n"
              "void main() {\n  int twice(int x) => x * 2;\n  print(twice(2));\n}\n")
    chunks = chunk_source("shape.dart", source.encode(), "dart")
    assert [(c.kind, c.name, c.start_line, c.end_line, c.doc) for c in chunks] == [
        ("class", "Shape", 1, 8, ""), ("method", "Shape.*", 6, 7, "Scale by [k]."),
        ("class", "String", 10, 12, ""), ("method", "String.blank", 11, 11, ""),
        ("function", "main", 14, 17, "")]
    assert "double area();\n" in chunks[0].text and "Shape operator *(num k) => ...\n}" in chunks[0].text


def test_elixir_docs_are_the_doc_attributes_and_a_def_starts_at_its_spec() -> None:
    """@moduledoc inside a module and @doc above a def (past its @spec and @impl) are their docs, sigils and
    heredocs alike; @doc false is none, and the next clause of the same function has none of its own. A defimpl
    without `for:` is named after the module around it, as Elixir names it."""
    source = ('defmodule Date.Range do\n  @moduledoc ~S"""\n  Dates from `first` to `last`.\n  """\n\n'
              '  @doc "The first date."\n  @spec first(t) :: Date.t()\n  def first(%{first: f}), do: f\n'
              '  def first(_), do: nil\n\n  @doc false\n  def __struct__, do: %{}\n\n'
              '  defimpl Enumerable do\n    def count(range) do\n      {:ok, 1}\n    end\n  end\nend\n')
    chunks = chunk_source("date_range.ex", source.encode(), "elixir")
    assert [(c.kind, c.name, c.start_line, c.end_line, c.doc) for c in chunks] == [
        ("class", "Date.Range", 1, 19, "Dates from `first` to `last`."),
        ("method", "Date.Range.first", 7, 8, "The first date."), ("method", "Date.Range.first", 9, 9, ""),
        ("method", "Date.Range.__struct__", 12, 12, ""), ("class", "Date.Range.Enumerable", 14, 18, ""),
        ("method", "Date.Range.Enumerable.count", 15, 17, "")]
    assert "  def count(range) do ... end\n" in chunks[-2].text


@pytest.mark.parametrize(("path", "head", "language"), [
    ("RCTBridge.h", b"#import <Foundation/Foundation.h>\n", "objc"),
    ("RCTBridge.h", b"// Bridge\n@interface RCTBridge : NSObject\n@end\n", "objc"),
    ("util.h", b"/**\n * @interface is a doc tag here\n */\nint clamp(int v);\n", "c"),
    ("util.h", b"namespace util {\n}\n", "cpp"),
    ("RCTConversions.h", b"#import <UIKit/UIKit.h>\n\ninline std::string toString(NSString *s) { return {}; }\n"
     b"namespace facebook {\n}\n", "cpp"),
    ("RCTView.h", b"#import <UIKit/UIKit.h>\nnamespace f {\n}\n@interface RCTView : UIView\n@end\n", "objc"),
    ("Player.m", b"@implementation Player\n@end\n", "objc"),
    ("fft.m", b"function y = fft2(x)\n% MATLAB, not Objective-C\ny = x;\nend\n", "matlab"),
    ("plot_sine.m", b"x = linspace(0, 2*pi);\nplot(x, sin(x));\n", "matlab"),
    # Mathematica's and Mercury's .m files, and plain C in a .m, are text
    ("Geo.m", b"(* ::Package:: *)\nBeginPackage[\"Geo`\"]\n", None),
    ("queue.m", b"%  A queue.\n:- module queue.\n:- interface.\n", None),
    ("main.m", b"#include <stdio.h>\nint main(void) { return 0; }\n", None),
])
def test_objective_c_is_told_from_c_cpp_and_matlab_by_what_it_writes_at_the_start_of_a_line(path, head, language):
    from codeneedle.indexer.languages import language_for_source

    assert language_for_source(path, head) == language


def test_an_objective_c_header_between_nonnull_macros_keeps_its_interfaces_and_docs() -> None:
    """NS_ASSUME_NONNULL_BEGIN / _END are read as blank lines (tree-sitter-objc took them for broken statements and
    lost the @interface after them); a method is named by its whole selector, an unnamed part included."""
    source = ("#import <UIKit/UIKit.h>\n\nNS_ASSUME_NONNULL_BEGIN\n\n/// A bridge to JavaScript.\n"
              "@interface RCTBridge : NSObject\n- (void)reload;\n@end\n\n/** Reloads the bridge. */\n"
              "@interface RCTReloader : NSObject\n@end\n\nNS_ASSUME_NONNULL_END\n\n"
              "@implementation RCTReloader\n- (void)set:(id)a :(id)b {}\n@end\n")
    assert [c for c in _outline_docs("RCTBridge.h", source, "objc") if c[0] != "block"] == [
        ("class", "RCTBridge", 6, "A bridge to JavaScript."), ("class", "RCTReloader", 11, "Reloads the bridge."),
        ("class", "RCTReloader", 16, ""), ("method", "RCTReloader.set::", 17, "")]


def test_react_native_method_macros_are_the_methods_they_declare() -> None:
    """RCT_EXPORT_METHOD(sel : (T)x) { ... } is the method `sel:` (tree-sitter-objc took the macro for a broken
    statement: every method of the @implementation after it was lost, and its `if` blocks became unnamed methods);
    RCT_REMAP_METHOD is named by its selector, RCT_CUSTOM_VIEW_PROPERTY by its property. Ranges stay the file's."""
    source = ("#import \"RCTEventEmitter.h\"\n\n@implementation RCTCalendar\n\n"
              "/// Adds an event.\n"
              "RCT_EXPORT_METHOD(addEvent : (NSString *)name\n                  location : (NSString *)where\n"
              "                  callback : (void (^)(NSArray *))done)\n"
              "{\n  if (name.length == 0) {\n    return;\n  }\n  done(@[]);\n}\n\n"
              "RCT_REMAP_METHOD(fetch, fetchWithId : (nonnull NSNumber *)eventId)\n{\n}\n\n"
              "RCT_CUSTOM_VIEW_PROPERTY(color, UIColor, UIView)\n{\n  if (json) {\n  }\n}\n\n"
              "- (void)stopObserving\n{\n}\n\n@end\n")
    data = source.encode()
    chunks = chunk_source("RCTCalendar.m", data, "objc")
    named = [(c.kind, c.name, c.start_line, c.end_line) for c in chunks if c.kind != "block"]
    assert named == [("class", "RCTCalendar", 3, 30), ("method", "RCTCalendar.addEvent:location:callback:", 6, 14),
                     ("method", "RCTCalendar.fetchWithId:", 16, 18), ("method", "RCTCalendar.color", 20, 24),
                     ("method", "RCTCalendar.stopObserving", 26, 28)]
    add = next(c for c in chunks if c.name.endswith("addEvent:location:callback:"))
    assert add.text.startswith("RCT_EXPORT_METHOD(addEvent") and add.leading_doc == "Adds an event."
    assert all(data[c.start_byte:c.end_byte].decode() == c.text for c in chunks if c.kind == "method")


def test_zig_containers_are_classes_and_a_function_returning_a_type_keeps_its_struct() -> None:
    """`const Name = struct/enum/union {...}` is a class and its fns its methods (nested containers qualify them); an
    extern fn has no body and no chunk; the struct a generic function returns stays in that function."""
    source = ("const Shape = union(enum) {\n    circle: f32,\n    const Unit = struct {\n"
              "        fn one() Unit { return .{}; }\n    };\n};\n\nextern fn puts(s: [*:0]const u8) c_int;\n\n"
              "/// A list of `T`.\nfn List(comptime T: type) type {\n    return struct {\n"
              "        items: []T,\n        fn first(self: @This()) T { return self.items[0]; }\n    };\n}\n")
    assert [c for c in _outline_docs("shape.zig", source, "zig") if c[0] != "block"] == [
        ("class", "Shape", 1, ""), ("class", "Shape.Unit", 3, ""), ("method", "Shape.Unit.one", 4, ""),
        ("function", "List", 11, "A list of `T`.")]


def test_a_haskell_function_is_its_signature_and_every_equation_after_it() -> None:
    """The chunk starts at the type signature (or the first equation when there is none) and runs over the equations
    of the same name; a where-bound helper stays inside; Haddock's `-- |` mark leaves the doc."""
    source = ("-- | Length of a list.\nlen :: [a] -> Int\nlen [] = 0\nlen (_ : xs) = 1 + len xs\n\n"
              "-- not Haddock, still the comment above\ntwice x = go x\n  where go y = y * 2\n\n"
              "x |> f = f x\n")
    chunks = chunk_source("list.hs", source.encode(), "haskell")
    assert [(c.kind, c.name, c.start_line, c.end_line, c.doc) for c in chunks] == [
        ("function", "len", 2, 4, "Length of a list."),
        ("function", "twice", 7, 8, "not Haddock, still the comment above"), ("function", "|>", 10, 10, "")]


def test_a_haskell_block_comment_above_a_function_is_its_doc_but_a_pragma_is_not() -> None:
    """`{- | ... -}` and `{-| ... -}` (Haddock's block form) are docs, as `-- |` is, and no window of their own."""
    source = ("{-# LANGUAGE LambdaCase #-}\npush :: a -> [a] -> [a]\npush x xs = x : xs\n\n"
              "{- | Pop the top item.\n   Nothing when empty. -}\npop :: [a] -> Maybe a\npop [] = Nothing\n\n"
              "{-| Peek at the top. -}\npeek = pop\n")
    assert _outline_docs("stack.hs", source, "haskell") == [
        ("block", "stack", 1, ""), ("function", "push", 2, ""), ("function", "pop", 7, "Pop the top item.\nNothing when empty."),
        ("function", "peek", 11, "Peek at the top.")]


def test_julia_doc_strings_stand_right_above_or_in_a_doc_macro_and_macros_start_their_function() -> None:
    """A string right above a definition is its doc (not one a blank line away); `@doc "..." f(x) = ...` too; a
    definition under `@inline` starts at the macro; typed and where-clause signatures are named like plain ones."""
    source = ('"Twice `x`."\ntwice(x::T)::T where {T} = 2x\n\n"Not a doc: a blank line follows."\n\n'
              'function half(x)::Float64\n    x / 2\nend\n\n@doc "Thrice." thrice(x) = 3x\n\n'
              '@inline function quad(x::T) where T\n    4x\nend\n')
    assert [c for c in _outline_docs("ops.jl", source, "julia") if c[0] != "block"] == [
        ("function", "twice", 2, "Twice `x`."), ("function", "half", 6, ""), ("function", "thrice", 10, "Thrice."),
        ("function", "quad", 12, "")]


def test_ocaml_let_and_bindings_start_at_their_keyword_and_only_odoc_comments_are_docs() -> None:
    """`let rec f ... and g ...` gives each function its own chunk from its keyword on; a value is no function; a
    `(** ... *)` above is a doc, a plain `(* ... *)` or a `(*****)` banner is not."""
    source = ("(**************)\nlet rec even n = n = 0 || odd (n - 1)\n(** Whether [n] is odd. *)\n"
              "and odd n = n <> 0 && even (n - 1)\n\n(* not a doc *)\nlet square = fun x -> x * x\n\n"
              "let limit = 10\n")
    assert [c for c in _outline_docs("parity.ml", source, "ocaml") if c[0] != "block"] == [
        ("function", "even", 2, ""), ("function", "odd", 4, "Whether [n] is odd."), ("function", "square", 7, "")]


def test_an_odoc_comment_after_a_definition_on_its_own_line_is_its_doc() -> None:
    """`let push x s = x :: s (** Push [x]. *)`: the doc closes the line it documents, and is no window of its own."""
    source = "let push x s = x :: s (** Push [x] on [s]. *)\n\nlet pop = function [] -> None | x :: _ -> Some x\n"
    assert _outline_docs("stack.ml", source, "ocaml") == [
        ("function", "push", 1, "Push [x] on [s]."), ("function", "pop", 3, "")]


def test_an_ocaml_interface_is_a_stub_that_leads_to_its_implementation() -> None:
    from codeneedle.indexer.declarations import implements
    from codeneedle.indexer.ranking import is_stub
    from codeneedle.indexer.store import ChunkRow

    def row(path: str, text: str) -> ChunkRow:
        c = by_name(chunk_source(path, text.encode(), language_for_path(path)), "find")
        return ChunkRow(1, c.path, c.language, c.kind, c.name, c.start_line, c.end_line, c.start_byte, c.end_byte,
                        c.text, c.doc, "h")

    stub, impl = row("lib/lru.mli", "val find : 'k -> 'v\n"), row("lib/lru.ml", "let find k = k\n")
    assert is_stub(stub) and not is_stub(impl) and implements(impl, stub)


def test_perl_packages_qualify_subs_up_to_the_next_and_pod_above_a_sub_is_its_doc() -> None:
    """`package A;` qualifies the subs after it up to the next package statement; a sub named with its package keeps
    it; the POD right above a sub is its doc without the commands (an =item's words stay), the module's NAME section
    further up is not; a script without an extension that runs perl is Perl."""
    from codeneedle.indexer.languages import language_for_source

    source = ("package A;\n\n=head1 NAME\n\nA - letters\n\n=cut\n\nsub a1 { 1 }\n\n=item b1($x)\n\nDoubles.\n\n"
              "=cut\n\nsub B::b1 { 2 * $_[0] }\n\npackage C;\nsub c1 { 3 }\n")
    assert [c for c in _outline_docs("a.pm", source, "perl") if c[0] != "block"] == [
        ("function", "A.a1", 9, ""), ("function", "B.b1", 17, "b1($x)\n\nDoubles."), ("function", "C.c1", 20, "")]
    assert language_for_source("bin/report", b"#!/usr/bin/env perl\nuse strict;\n") == "perl"


def test_a_pod_block_from_the_modules_name_down_to_a_subs_item_gives_the_sub_only_its_item() -> None:
    """Dpkg's modules open one POD block with =encoding and run it from =head1 NAME to the first sub's =item: the
    sub's doc is its own section, not the module's description."""
    source = ("package Dpkg::Version;\n\n=encoding utf8\n\n=head1 NAME\n\nDpkg::Version - handle versions\n\n"
              "=head1 METHODS\n\n=over 4\n\n=item $v = Dpkg::Version->new($version)\n\nCreate a version object.\n\n"
              "=cut\n\nsub new { bless {}, shift }\n")
    (new,) = [c for c in _outline_docs("Version.pm", source, "perl") if c[0] != "block"]
    assert new == ("function", "Dpkg.Version.new", 19, "$v = Dpkg::Version->new($version)\n\nCreate a version object.")


def test_elixir_operators_are_defined_and_named_like_functions() -> None:
    """Bitwise's `defmacro left &&& right` and `defmacro ~~~expr`, a guarded `def left <~> right when ...`."""
    source = ('defmodule Bitwise do\n  @doc "Bitwise AND."\n  defmacro left &&& right do\n    quote do: 1\n  end\n\n'
              "  defmacro ~~~expr, do: expr\n  def left <<< right when is_integer(left), do: 1\nend\n")
    assert _outline_docs("bitwise.ex", source, "elixir") == [
        ("class", "Bitwise", 1, ""), ("method", "Bitwise.&&&", 3, "Bitwise AND."), ("method", "Bitwise.~~~", 7, ""),
        ("method", "Bitwise.<<<", 8, "")]


@pytest.mark.parametrize(("path", "language", "source", "names"), [
    ("p.dart", "dart", "class P {\n  bool operator <(P o) => true;\n  P operator <<(int n) => this;\n}\n",
     ["P", "P.<", "P.<<"]),
    ("alt.hs", "haskell", "(<|>) :: a -> a -> a\na <|> b = a\n\n(<+>) x y = x\n", ["<|>", "<+>"]),
    ("ops.ml", "ocaml", "let ( <*> ) f x = f x\nlet ( >>= ) m f = f m\n", ["(<*>)", "(>>=)"]),
    ("ops.jl", "julia", "Base.:<(a::P, b::P) = true\n", ["Base.:<"]),
])
def test_operators_keep_their_names(path, language, source, names) -> None:
    """An operator's name is no generic parameter list: `<`, `<|>`, `( <*> )` and `Base.:<` are kept (closed up)."""
    assert [c.name for c in chunk_source(path, source.encode(), language) if c.kind != "block"] == names


def test_sql_definitions_are_chunks_and_every_other_statement_stays_in_windows() -> None:
    """CREATE FUNCTION / PROCEDURE / TRIGGER are functions, tables and views classes, named as written without their
    quotes; a migration's INSERTs and ALTERs are line windows, not a chunk each; a banner's title is no doc."""
    inserts = "".join(f"INSERT INTO items VALUES ({i}, 'item {i}');\n" for i in range(200))
    source = ('CREATE TABLE "app"."items" (id INT, name TEXT);\n' + inserts
              + "ALTER TABLE app.items ADD COLUMN price NUMERIC;\n\n"
              "------------------------------\n-- Triggers\n------------------------------\n"
              "CREATE TRIGGER items_audit AFTER INSERT ON app.items FOR EACH ROW EXECUTE FUNCTION audit();\n\n"
              "-- Archive old rows.\n"
              "CREATE OR REPLACE PROCEDURE archive() LANGUAGE SQL AS $$ DELETE FROM app.items $$;\n"
              "CREATE MATERIALIZED VIEW `totals` AS SELECT count(*) FROM app.items;\n")
    chunks = chunk_source("db/001_items.sql", source.encode(), "sql")
    assert [(c.kind, c.name, c.start_line, c.doc) for c in chunks if c.kind != "block"] == [
        ("class", "app.items", 1, ""), ("function", "items_audit", 207, ""),
        ("function", "archive", 210, "Archive old rows."), ("class", "totals", 211, "")]
    assert len([c for c in chunks if c.kind == "block"]) == 6  # 201 statements in 40-line windows


def test_a_sql_statement_the_grammar_cannot_read_does_not_name_or_start_the_function_after_it() -> None:
    """PostgreSQL's CREATE OPERATOR is no statement tree-sitter-sql knows: the function after it starts at its own
    CREATE, and an operator class listing `FUNCTION 1 f(...)` is no function of its own."""
    source = ("CREATE OPERATOR <-> (\n  LEFTARG = money,\n  PROCEDURE = cash_dist\n);\n\n"
              "CREATE FUNCTION date_dist(date, date)\nRETURNS int4\nAS 'MODULE_PATHNAME'\nLANGUAGE C STRICT;\n\n"
              "CREATE OPERATOR CLASS gist_oid_ops\nDEFAULT FOR TYPE oid USING gist\nAS\n"
              "  OPERATOR 1 < ,\n  FUNCTION 1 gbt_oid_consistent (internal, oid),\n  STORAGE gbtreekey8;\n")
    chunks = chunk_source("btree.sql", source.encode(), "sql")
    assert [(c.kind, c.name, c.start_line, c.end_line) for c in chunks] == [
        ("block", "btree", 1, 4), ("function", "date_dist", 6, 9), ("block", "btree", 11, 16)]


def test_hcl_blocks_are_named_as_terraform_and_packer_address_them() -> None:
    """Top-level blocks with labels, bare or quoted; `locals`, `terraform` and nested blocks stay where they are;
    `#` and `//` comments above are docs."""
    source = ('locals {\n  name = "web"\n}\n\n// The image every server boots.\nsource "amazon-ebs" "ubuntu" {\n'
              '  ami_name = "web"\n}\n\n# Web servers.\nresource aws_instance web {\n  lifecycle {\n'
              '    create_before_destroy = true\n  }\n}\n\nephemeral "random_password" "db" {\n  length = 16\n}\n')
    assert _outline_docs("main.tf", source, "hcl") == [
        ("block", "main", 1, ""), ("class", "source.amazon-ebs.ubuntu", 6, "The image every server boots."),
        ("class", "aws_instance.web", 11, "Web servers."), ("class", "ephemeral.random_password.db", 17, "")]


def test_solidity_contracts_hold_their_functions_modifiers_events_and_special_functions() -> None:
    """An interface's declarations stay in its chunk; constructor, receive and fallback are named by their keyword;
    a free function at file level is a function; NatSpec `///` is the doc."""
    source = ("interface IVault {\n    function deposit(uint256 amount) external;\n}\n\n"
              "contract Vault is IVault {\n    error Insufficient(uint256 available);\n\n"
              "    constructor() {}\n\n    /// Take deposits.\n    function deposit(uint256 amount) external {}\n\n"
              "    fallback() external {}\n}\n\n/// Twice x.\nfunction twice(uint x) pure returns (uint) { return 2 * x; }\n")
    assert _outline_docs("Vault.sol", source, "solidity") == [
        ("class", "IVault", 1, ""), ("class", "Vault", 5, ""), ("method", "Vault.Insufficient", 6, ""),
        ("method", "Vault.constructor", 8, ""), ("method", "Vault.deposit", 11, "Take deposits."),
        ("method", "Vault.fallback", 13, ""), ("function", "twice", 17, "Twice x.")]


def test_fsharp_types_start_at_their_keyword_and_attributes_and_docs_do_not_trail_the_definition_above() -> None:
    """The grammar hangs a `///` doc on the end of the definition before it: that one ends at its code. `type ...
    and ...` gives each type; `[<EntryPoint>]` starts its let; `let rec ... and ...` is one function; a value is
    no function unless bound to a lambda."""
    source = ("namespace Shop\n\n/// A point.\ntype Point = { X: float; Y: float }\n\n/// A line.\n"
              "type Line(a: Point) =\n    member _.Start = a\n    static member (+) (l: Line, p: Point) = l\n\n"
              "and Shape = Circle of float\n\nlet limit = 100\nlet handler = fun x -> x + 1\n\n"
              "let rec even n = n = 0 || odd (n - 1)\nand odd n = n <> 0 && even (n - 1)\n\n"
              "/// Entry point.\n[<EntryPoint>]\nlet main argv =\n    0\n")
    chunks = chunk_source("Shapes.fs", source.encode(), "fsharp")
    assert [(c.kind, c.name, c.start_line, c.end_line, c.doc) for c in chunks if c.kind != "block"] == [
        ("class", "Shop.Point", 4, 4, "A point."), ("class", "Shop.Line", 7, 9, "A line."),
        ("method", "Shop.Line.Start", 8, 8, ""), ("method", "Shop.Line.(+)", 9, 9, ""),
        ("class", "Shop.Shape", 11, 11, ""), ("function", "Shop.handler", 14, 14, ""),
        ("function", "Shop.even", 16, 17, ""), ("function", "Shop.main", 20, 22, "Entry point.")]
    assert by_name(chunks, "Shop.Line").text == (
        "type Line(a: Point) =\n    member _.Start = ...\n    static member (+) (l: Line, p: Point) = ...")


def test_powershell_help_in_hash_lines_and_plain_comments() -> None:
    """Help written as `#` lines at the top of a body counts when it has help keywords; a plain comment there does
    not; `#region` above a function is no doc; a filter is a function; `global:prompt` defines prompt."""
    source = ("function Get-Size {\n    # .SYNOPSIS\n    # Size of a file in bytes.\n    param($Path)\n"
              "    (Get-Item $Path).Length\n}\n\nfunction Clear-Cache {\n    # remove everything\n"
              "    Remove-Item cache -Recurse\n}\n\n#region helpers\nfilter Only-Even { if ($_ % 2 -eq 0) { $_ } }\n"
              "\n# The prompt, with the environment's name.\nfunction global:prompt { \"(env) > \" }\n")
    assert _outline_docs("tools.psm1", source, "powershell") == [
        ("function", "Get-Size", 1, "Size of a file in bytes."), ("function", "Clear-Cache", 8, ""),
        ("block", "tools", 13, ""), ("function", "Only-Even", 14, ""),
        ("function", "prompt", 17, "The prompt, with the environment's name.")]


def test_matlab_classdef_methods_and_a_script_s_local_functions() -> None:
    """A classdef is a class with its methods (Account.deposit), each with the help under its function line; a
    script's code is a block and its local functions functions."""
    classdef = ("classdef Account < handle\n    %ACCOUNT A bank account.\n    methods\n"
                "        function deposit(obj, amount)\n            % Add money.\n"
                "            obj.Balance = obj.Balance + amount;\n        end\n    end\nend\n")
    assert _outline_docs("Account.m", classdef, "matlab") == [
        ("class", "Account", 1, "ACCOUNT A bank account."), ("method", "Account.deposit", 4, "Add money.")]
    script = "% Plot a sine.\nx = linspace(0, 2*pi);\nplot(x, helper(x));\n\nfunction y = helper(x)\n%{\nSine of x.\n%}\ny = sin(x);\nend\n"
    assert _outline_docs("plot_sine.m", script, "matlab") == [
        ("block", "plot_sine", 1, ""), ("function", "helper", 5, "Sine of x.")]


def test_cuda_kernels_templates_and_device_methods_are_cpp_definitions() -> None:
    source = ("template <typename T>\n__global__ void fill(T* out, T value, int n) {\n    int i = threadIdx.x;\n"
              "    if (i < n) out[i] = value;\n}\n\nstruct Grid {\n"
              "    __host__ __device__ int blocks(int n) const { return (n + 255) / 256; }\n};\n")
    assert _outline_docs("fill.cuh", source, "cuda") == [
        ("function", "fill", 1, ""), ("class", "Grid", 7, ""), ("method", "Grid.blocks", 8, "")]


def test_fortran_modules_and_programs_qualify_their_procedures_and_interfaces_only_declare() -> None:
    """An interface block's procedures are declarations, not chunks; an OpenMP directive above a procedure is no
    doc; a procedure outside every module is a function."""
    source = ("program main\n  interface\n    subroutine ext(a)\n      real a\n    end subroutine\n  end interface\n"
              "  call report()\ncontains\n  !> Print the report.\n  subroutine report()\n"
              "    print *, 'done'\n  end subroutine report\nend program main\n\n!$omp declare simd\n"
              "real function twice(x)\n  real x\n  twice = 2 * x\nend function\n")
    assert _outline_docs("main.f90", source, "fortran") == [
        ("class", "main", 1, ""), ("method", "main.report", 10, "Print the report."), ("block", "main", 15, ""),
        ("function", "twice", 16, "")]
