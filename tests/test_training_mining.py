"""Mining: doc-comment removal per language, CodeSearchNet filters, query styles, repository splits."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from codeneedle.indexer.chunker import chunk_source
from codeneedle.indexer.chunks import Chunk
from codeneedle.indexer.encoder import embed_text
from codeneedle.training import corpus
from codeneedle.training.mining import (
    LANGUAGE_NAMES,
    Pair,
    Repo,
    build_dataset,
    clean_doc,
    discover_repos,
    first_sentence,
    function_chunks,
    is_test_path,
    iter_source_files,
    keep_function,
    keep_query,
    minable,
    mine_chunks,
    mine_file,
    mine_repo,
    split_repos,
    training_examples,
    web_query,
)

FIXTURES = Path(__file__).parent / "fixtures"

PY = b'''import os


class Store:
    def load_items(self, path, limit=10):
        """Load the stored items from a JSON file.

        Args:
            path: where the file is.
        """
        with open(path) as fh:
            data = json.load(fh)
        return data[:limit]

    def __repr__(self):
        """Return a readable representation of the store."""
        return "Store()"


def test_load_items():
    """Check that loading items from a file works."""
    assert Store().load_items("x") == []
'''

JS = b'''/**
 * Compute the checksum of a buffer using CRC32.
 * @param {Buffer} buf the data
 * @returns {number}
 */
function crc32(buf) {
  let c = 0;
  for (const b of buf) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}
'''

GO = b'''package x

// ParseDuration parses a duration string such as "1h30m".
// It returns an error for malformed input.
func ParseDuration(s string) (Duration, error) {
	d, err := parse(s)
	if err != nil {
		return 0, err
	}
	return d, nil
}
'''

RUST = b'''/// Returns the number of set bits in the word.
///
/// # Examples
#[inline]
pub fn popcount(mut x: u64) -> u32 {
    let mut n = 0;
    while x != 0 { x &= x - 1; n += 1; }
    n
}
'''


# The languages the indexer learned after the miner, one small source tree each: a documented function, one without a
# doc (a plain comment where the chunker attaches one, which is not documentation), and a documented test (in a test
# file where the language keeps its tests apart, Zig's `test "name" {}` block in the same file).
NEW_LANGUAGES: dict[str, tuple[dict[str, bytes], str, str]] = {
    "dart": ({
        "lib/playlist.dart": b"""import 'dart:math';

/// Shuffle the [tracks] with [random], keeping the first one in place.
void shuffleKeepingFirst(List<Track> tracks, Random random) {
  final first = tracks.removeAt(0);
  tracks.shuffle(random);
  tracks.insert(0, first);
}

// The playing time of all tracks, in seconds.
int totalSeconds(List<Track> tracks) {
  var total = 0;
  for (final t in tracks) total += t.seconds;
  return total;
}
""",
        "test/playlist_test.dart": b"""/// Check that shuffling keeps the first track where it was.
void checkShuffle() {
  final tracks = [a, b, c];
  shuffleKeepingFirst(tracks, Random(1));
  expect(tracks.first, a);
}
"""}, "shuffleKeepingFirst", "Shuffle the tracks with random, keeping the first one in place."),
    "elixir": ({
        "lib/shop/cart.ex": b'''defmodule Shop.Cart do
  @doc """
  Add `quantity` of a product to the cart, merging with a line already there.

  ## Examples

      iex> Shop.Cart.add(%{}, "apple", 2)
  """
  @spec add(map, String.t(), pos_integer) :: map
  def add(cart, sku, quantity) do
    Map.update(cart, sku, quantity, &(&1 + quantity))
  end

  # The number of items in the cart, for the badge.
  def count(cart) do
    cart
    |> Map.values()
    |> Enum.sum()
  end
end
''',
        "test/shop/cart_test.exs": b'''defmodule Shop.CartTest do
  use ExUnit.Case

  @doc "Build a cart holding one of every product listed."
  def cart_of(skus) do
    skus
    |> Enum.map(&{&1, 1})
    |> Map.new()
  end

  test "adding twice merges the lines" do
    assert Shop.Cart.add(%{"a" => 1}, "a", 2) == %{"a" => 3}
  end
end
'''}, "Shop.Cart.add", "Add quantity of a product to the cart, merging with a line already there."),
    "ruby": ({
        "lib/text/slug.rb": b"""module Text
  # Turn an article title into a lowercase URL slug with +sep+ between its words.
  def self.slugify(title, sep = "-")
    words = title.downcase.scan(/[a-z0-9]+/)
    words.join(sep)
  end

  def self.truncate(slug, max)
    return slug if slug.length <= max
    slug[0, max].sub(/-[^-]*\\z/, "")
  end
end
""",
        "test/text/slug_test.rb": b"""# Assert that a title gives the slug expected of it.
def assert_slug(title, expected)
  actual = Text.slugify(title)
  raise "#{actual} != #{expected}" unless actual == expected
end
"""}, "Text.slugify", "Turn an article title into a lowercase URL slug with sep between its words."),
    "objc": ({
        "Sources/PlaybackQueue.m": b"""#import "PlaybackQueue.h"

@implementation PlaybackQueue

/**
 * Move the item at `index` to the front, so that it plays next.
 */
- (void)playNext:(NSUInteger)index
{
  id item = _items[index];
  [_items removeObjectAtIndex:index];
  [_items insertObject:item atIndex:0];
}

// Forget every item and start again.
- (void)clear
{
  [_items removeAllObjects];
  _position = 0;
}

@end
""",
        "AppTests/PlaybackQueueTests.m": b"""#import <XCTest/XCTest.h>

@implementation PlaybackQueueTests

/// Check that the moved item is the one that plays next.
- (void)checkPlayNext
{
  PlaybackQueue *q = [PlaybackQueue queueWithCount:3];
  [q playNext:2];
  XCTAssertEqual(q.count, 3);
}

@end
"""}, "PlaybackQueue.playNext:", "Move the item at index to the front, so that it plays next."),
    "zig": ({
        "src/count.zig": b"""const std = @import("std");

/// Count the bytes of `buf` equal to `byte`, as a histogram bucket would.
pub fn countByte(buf: []const u8, byte: u8) usize {
    var n: usize = 0;
    for (buf) |b| {
        if (b == byte) n += 1;
    }
    return n;
}

// Sum of the bytes, for a checksum.
fn sum(bytes: []const u8) u32 {
    var total: u32 = 0;
    for (bytes) |b| total += b;
    return total;
}

/// Counting finds every byte equal to the one asked for.
test "count finds every byte" {
    try std.testing.expectEqual(@as(usize, 2), countByte("abca", 'a'));
    try std.testing.expectEqual(@as(usize, 0), countByte("", 'a'));
}
"""}, "countByte", "Count the bytes of buf equal to byte, as a histogram bucket would."),
    "haskell": ({
        "src/Data/Queue.hs": b"""module Data.Queue (Queue, pop, size) where

data Queue a = Queue [a] [a]

-- | Take the value at the front of the 'Queue', if there is one.
--
-- The back list is reversed only when the front one runs out.
pop :: Queue a -> Maybe (a, Queue a)
pop (Queue [] []) = Nothing
pop (Queue [] back) = pop (Queue (reverse back) [])
pop (Queue (x : front) back) = Just (x, Queue front back)

-- Count the values of both lists together.
size :: Queue a -> Int
size (Queue front back) =
  length front
    + length back
""",
        "test/QueueSpec.hs": b"""module QueueSpec (spec) where

-- | Pop every value of a queue, the front one first.
drain :: Queue a -> [a]
drain q = case pop q of
  Nothing -> []
  Just (x, rest) -> x : drain rest
"""}, "pop", "Take the value at the front of the Queue, if there is one."),
    "julia": ({
        "src/Geometry.jl": b'''module Geometry

"""
    area(c::Circle)

Compute the area of a circle from its radius.
"""
function area(c::Circle)
    r = c.r
    return pi * r^2
end

# Scale a circle by `k`.
function scale(c::Circle, k)
    r = c.r * k
    Circle(r)
end

end
''',
        "test/runtests.jl": b'''using Test, Geometry

"Check every area against a table of known values."
function check_areas(table)
    for (c, a) in table
        @test area(c) == a
    end
end
'''}, "Geometry.area", "Compute the area of a circle from its radius."),
    "ocaml": ({
        "src/lru.ml": b"""(** [find c k] is the value under [k], now the most recent. *)
let find c k =
  match List.assoc_opt k c.entries with
  | None -> None
  | Some v ->
    c.entries <- (k, v) :: List.remove_assoc k c.entries;
    Some v

(* Insert, dropping the least recent entry when full. *)
let add c k v =
  let entries = (k, v) :: List.remove_assoc k c.entries in
  c.entries <- take c.capacity entries
""",
        # the interface's vals are signatures without code: its doc makes no pair of its own
        "src/lru.mli": b"""(** [find c k] is the value under [k], now the most recent. *)
val find :
  ('k, 'v) t ->
  'k -> 'v option
""",
        "test/test_lru.ml": b"""(** Fill a cache with the numbers up to [n], each under its own key. *)
let filled n =
  let c = Lru.create n in
  List.iter (fun k -> Lru.add c k k) (List.init n Fun.id);
  c
"""}, "find", "find c k is the value under k, now the most recent."),
    "perl": ({
        "lib/Shop/Inventory.pm": b"""package Shop::Inventory;

=head2 restock

Add C<$count> items of C<$code> to the stock, creating the product if needed.

=cut

sub restock {
    my ($self, $code, $count) = @_;
    $self->{stock}{$code} += $count;
    return $self;
}

sub count_of {
    my ($self, $code) = @_;
    my $n = $self->{stock}{$code};
    return $n // 0;
}

1;
""",
        "t/inventory.t": b"""use Test::More;

# Build an inventory holding one of each product code given.
sub inventory_of {
    my (@codes) = @_;
    my $inv = Shop::Inventory->new;
    $inv->restock($_, 1) for @codes;
    return $inv;
}
"""}, "Shop.Inventory.restock", "Add $count items of $code to the stock, creating the product if needed."),
    "sql": ({
        "db/functions.sql": b"""-- Total amount spent by one customer over all their orders.
CREATE OR REPLACE FUNCTION customer_total(cid INT) RETURNS NUMERIC AS $$
BEGIN
    RETURN (SELECT coalesce(sum(amount), 0) FROM orders WHERE customer_id = cid);
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION order_count(cid INT) RETURNS BIGINT AS $$
    SELECT count(*) FROM orders WHERE customer_id = cid;
$$ LANGUAGE sql;
""",
        "db/test/functions.sql": b"""-- Insert a customer with three orders for the checks below.
CREATE FUNCTION seed_orders() RETURNS void AS $$
BEGIN
    INSERT INTO orders (customer_id, amount) VALUES (1, 1), (1, 2), (1, 3);
END;
$$ LANGUAGE plpgsql;
"""}, "customer_total", "Total amount spent by one customer over all their orders."),
    "solidity": ({
        "contracts/Vault.sol": b"""pragma solidity ^0.8.20;

contract Vault {
    mapping(address => uint256) public balances;

    /// @notice Deposit ether into the sender's balance.
    /// @param amount how much the sender sends
    function deposit(uint256 amount) external payable {
        require(msg.value == amount, "value mismatch");
        balances[msg.sender] += amount;
    }

    function withdraw(uint256 amount) external {
        balances[msg.sender] -= amount;
        payable(msg.sender).transfer(amount);
    }
}
""",
        "test/Vault.t.sol": b"""pragma solidity ^0.8.20;

contract VaultCheck {
    /// @notice Deposit once from a fresh account and read the balance back.
    function depositOnce(Vault v) public returns (uint256) {
        v.deposit{value: 1}(1);
        return v.balances(address(this));
    }
}
"""}, "Vault.deposit", "Deposit ether into the sender's balance."),
    "fsharp": ({
        "src/Inventory.fs": b"""module Shop.Inventory

/// <summary>Add an item in front of the stock, keeping the others.</summary>
let add item stock =
    let others = stock |> List.filter (fun i -> i <> item)
    item :: others

let total stock =
    stock
    |> List.length
""",
        "tests/InventoryTests.fs": b"""module InventoryTests

/// Build a stock holding each of the given items once.
let stockOf items =
    items
    |> List.fold (fun s i -> Shop.Inventory.add i s) []
"""}, "Shop.Inventory.add", "Add an item in front of the stock, keeping the others."),
    "powershell": ({
        "tools/Deploy.psm1": b"""<#
.SYNOPSIS
    Copies the build output to the deployment share.
.PARAMETER Target
    The share to copy to.
#>
function Copy-Build {
    param([string]$Target)
    $source = Join-Path $PSScriptRoot "dist"
    Copy-Item -Recurse $source $Target
}

function Remove-Build {
    param([string]$Target)
    Remove-Item -Recurse $Target
}
""",
        "tests/Deploy.Tests.ps1": b"""# Make a fake build folder with one file in it.
function New-FakeBuild {
    param([string]$Path)
    New-Item -ItemType Directory $Path
    Set-Content (Join-Path $Path "app.js") "x"
}
"""}, "Copy-Build", "Copies the build output to the deployment share."),
    "cuda": ({
        "src/saxpy.cu": b"""/// Compute y = a * x + y over n elements, one thread per element.
__global__ void saxpy(int n, float a, const float* x, float* y) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}

__global__ void scale(int n, float a, float* y) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * y[i];
}
""",
        "src/saxpy_test.cu": b"""/// Fill a device buffer with ones for the kernels under test.
__global__ void fill_ones(int n, float* y) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = 1.0f;
}
"""}, "saxpy", "Compute y = a * x + y over n elements, one thread per element."),
    "fortran": ({
        "src/vectors.f90": b"""module vectors
contains
  !> Euclidean norm of a vector of reals.
  pure function norm(v) result(r)
    real, intent(in) :: v(:)
    real :: r
    r = sqrt(sum(v**2))
  end function norm

  subroutine scale(v, k)
    real, intent(inout) :: v(:)
    real, intent(in) :: k
    v = v * k
  end subroutine scale
end module vectors
""",
        "tests/test_vectors.f90": b"""module checks
contains
  ! Check the norm of the unit vector along x.
  subroutine unit_norm()
    use vectors
    if (norm([1.0, 0.0]) /= 1.0) stop 1
  end subroutine unit_norm
end module checks
"""}, "vectors.norm", "Euclidean norm of a vector of reals."),
}


# A notebook as Jupyter writes it (one JSON string per source line), a magic in the cell with the functions.
NOTEBOOK = json.dumps({"cells": [
    {"cell_type": "markdown", "metadata": {}, "source": ["# Sales\n"]},
    {"cell_type": "code", "metadata": {}, "outputs": [], "source": [
        '%matplotlib inline\n', 'import pandas as pd\n', '\n', 'def load_sales(path):\n',
        '    """Read the monthly sales CSV into a data frame, months parsed."""\n',
        '    frame = pd.read_csv(path)\n', '    frame["month"] = pd.to_datetime(frame["month"])\n',
        '    return frame\n', '\n', 'def totals(frame):\n', '    by = frame.groupby("month")\n', '    return by.sum()\n']}],
    "metadata": {"kernelspec": {"language": "python"}}, "nbformat": 4}, indent=1).encode()


def chunk_named(path: str, language: str, data: bytes, name: str) -> Chunk:
    """The chunker's own chunk of that name (the miner reads where its doc comment sits from it)."""
    return next(c for c in chunk_source(path, data, language) if c.name == name)


def test_python_docstring_removed_and_first_sentence() -> None:
    ch = chunk_named("pkg/store.py", "python", PY, "Store.load_items")
    (pair,) = list(mine_chunks([ch], PY, "pypi:pkg"))
    assert pair.query == "Load the stored items from a JSON file."
    assert '"""' not in pair.code and "Args" not in pair.code
    assert pair.code.startswith("def load_items(self, path, limit=10):\n        with open(path)")
    assert '"""Load the stored items' in pair.code_with_doc


def test_a_file_in_its_declared_legacy_encoding_gives_its_own_words() -> None:
    source = ('# -*- coding: latin-1 -*-\n\ndef prix_du_café(commande):\n'
              '    """Calcule le prix d\'une commande au café, taxes comprises."""\n'
              '    total = sum(ligne.prix * ligne.quantité for ligne in commande.lignes)\n'
              '    remise = commande.remise or 0\n    return round((total - remise) * 1.2, 2)\n')
    (pair,) = mine_file("menu.py", source.encode("latin-1"), "pypi:menu")
    assert pair.name == "prix_du_café"
    assert pair.query == "Calcule le prix d'une commande au café, taxes comprises."
    assert "\ufffd" not in pair.code and pair.code.startswith("def prix_du_café(commande):")


def test_dunders_and_tests_are_filtered() -> None:
    chunks = [chunk_named("pkg/store.py", "python", PY, "Store.__repr__"),
              chunk_named("pkg/store.py", "python", PY, "test_load_items")]
    assert list(mine_chunks(chunks, PY, "pypi:pkg")) == []
    assert is_test_path("pkg/tests/test_x.py") and is_test_path("net/http/server_test.go")
    assert is_test_path("src/foo.spec.ts") and not is_test_path("pkg/testament.py")
    assert all(is_test_path(p) for p in ("src/CartTest.php", "Shop.Tests/Helpers.cs", "OrderServiceTests.cs",
                                         "core/src/FooSpec.scala", "lua/x_spec.lua", "Tests/AppTests/AppTests.swift"))
    assert not any(is_test_path(p) for p in ("src/Latest.cs", "src/Manifest.kt", "src/contest.php"))


def test_jsdoc_above_function() -> None:
    ch = chunk_named("lib/crc.js", "javascript", JS, "crc32")
    (pair,) = list(mine_chunks([ch], JS, "npm:crc"))
    assert pair.query == "Compute the checksum of a buffer using CRC32."
    assert "/**" not in pair.code and pair.code.startswith("function crc32")
    assert pair.code_with_doc.startswith("/**")


def test_go_doc_comment_drops_leading_name() -> None:
    ch = chunk_named("time/format.go", "go", GO, "ParseDuration")
    (pair,) = list(mine_chunks([ch], GO, "go:time"))
    assert pair.query == 'Parses a duration string such as "1h30m".'


def test_rust_doc_comment_through_attribute() -> None:
    ch = chunk_named("core/bits.rs", "rust", RUST, "popcount")
    (pair,) = list(mine_chunks([ch], RUST, "rust:core"))
    assert pair.query == "Returns the number of set bits in the word."


def test_doc_comment_after_an_annotation_is_stripped_from_the_code() -> None:
    java = b"class Cache {\n    @Override\n    /** Look up a value by key and mark it used. */\n" \
           b"    public V get(K key) {\n        V v = map.get(key);\n        touch(key);\n        return v;\n    }\n}\n"
    ch = chunk_named("Cache.java", "java", java, "Cache.get")
    assert ch.doc_inside and (ch.start_line, ch.doc_start_line, ch.doc_end_line) == (2, 3, 3)
    (pair,) = list(mine_chunks([ch], java, "java:cache"))
    assert pair.query == "Look up a value by key and mark it used."
    assert pair.code.startswith("@Override\n    public V get(K key) {") and "/**" not in pair.code
    assert pair.code_with_doc == ch.text


def test_chunks_record_where_their_doc_comment_sits() -> None:
    """The chunker records the doc comment's lines and bytes: inside the range for a docstring, above it for a
    comment; the miner and embed_text read them instead of guessing."""
    py = chunk_named("pkg/store.py", "python", PY, "Store.load_items")
    assert py.doc_inside and (py.doc_start_line, py.doc_end_line) == (6, 10)
    assert PY[py.doc_start_byte:py.doc_end_byte].startswith(b'"""Load the stored') and py.leading_doc == ""
    js = chunk_named("lib/crc.js", "javascript", JS, "crc32")
    assert not js.doc_inside and (js.doc_start_line, js.doc_end_line) == (1, 5)
    assert JS[js.doc_start_byte:js.doc_end_byte] == JS[:JS.index(b" */") + 3]
    assert js.leading_doc == js.doc.strip() != ""
    bom = chunk_named("lib/crc.js", "javascript", b"\xef\xbb\xbf" + JS, "crc32")
    assert (bom.doc_start_byte, bom.doc_end_byte) == (js.doc_start_byte + 3, js.doc_end_byte + 3)
    # Where the doc sits is not part of a chunk's identity: moving a function keeps its cached vector.
    assert js.content_hash == replace(js, doc_start_byte=0, doc_end_byte=0, doc_start_line=0,
                                      doc_end_line=0).content_hash


def test_mining_gives_the_pairs_recorded_before_it_read_doc_spans() -> None:
    """tests/fixtures/mined_pairs.json was written by the previous miner (which re-parsed docstrings with ast and
    re-scanned comments in the file's bytes, and walked the tree with os.walk) over four fixture trees, one of
    them (docrepo) made of edge cases: the chunker's doc spans and the indexer's walker must give the same."""
    recorded = json.loads((FIXTURES / "mined_pairs.json").read_text())
    for name, old in recorded.items():
        files = list(iter_source_files(FIXTURES / name))
        assert [f.path for f in files] == old["files"], name
        pairs = [asdict(p) for p in mine_repo(Repo("r", FIXTURES / name))[0]]
        assert pairs == old["pairs"], name
    # 55 recorded by the previous miner; 19 more from the C#, PHP, Kotlin, Swift, Scala, Lua and Bash fixtures, 15 from
    # the Perl, Objective-C, Haskell, Julia, OCaml, Dart, Elixir and Zig ones, 3 from the Ruby ones, 14 from the SQL,
    # Solidity, F#, PowerShell, MATLAB, CUDA and Fortran ones
    assert sum(len(old["pairs"]) for old in recorded.values()) == 106


def test_clean_doc_and_first_sentence() -> None:
    assert clean_doc("/**\n * Use {@link Foo#bar} to <b>read</b>.\n */") == "Use Foo#bar to read."
    assert clean_doc('"""Call :func:`os.path.join` on ``parts``."""') == "Call os.path.join on parts."
    assert first_sentence("Return the x, e.g. a number. More text.") == "Return the x, e.g. a number."
    assert first_sentence("Run adapters (e.g. Flask) here. More.") == "Run adapters (e.g. Flask) here."
    assert first_sentence("Pick one, i.e. The first. More.") == "Pick one, i.e. The first."
    assert first_sentence("Summary line\ncontinued here.\n\nDetails.") == "Summary line continued here."
    assert first_sentence("Args:\n  x: y") == ""
    assert clean_doc('/// <summary>Place an <see cref="T:Shop.Order"/>.</summary>\n/// <param name="o">x</param>',
                     "csharp") == "Place an Shop.Order.\n\n@param o x"
    assert clean_doc("--- Create a stack.\n-- @return a stack", "lua") == "Create a stack.\n@return a stack"
    assert clean_doc("# Print usage.\n## and exit", "bash") == "Print usage.\nand exit"
    assert clean_doc("# :call-seq:\n#   str.squish -> new_str\n#\n# Collapse runs of +whitespace+ in +str+.", "ruby") \
        == "Collapse runs of whitespace in str."
    assert clean_doc('@doc ~S"""\n  Parse the `line`.\n\n  ## Examples\n  """', "elixir") == "Parse the line.\n\n## Examples"
    assert clean_doc('"""\n    area(s::Shape)\n\nThe area of `s`.\n"""', "julia") == "The area of s."  # signature out
    assert clean_doc("-- | Pop the 'Queue' front (see \"Data.List\", @pop q@).\n--\n-- More.", "haskell") == \
        "Pop the Queue front (see Data.List, pop q).\n\nMore."
    assert clean_doc("{- | Push 'x' on top.\n   Returns the stack. -}", "haskell") == "Push x on top.\nReturns the stack."
    assert clean_doc("(** [find c k] is the value under {!key}, {b now} the most recent. *)", "ocaml") == \
        "find c k is the value under key, now the most recent."
    assert clean_doc("=item $inv->restock($code)\n\nAdd C<$count> of L<the item|Shop::Item>, B<C<n E<gt> 0>>.\n\n=cut",
                     "perl") == "Add $count of the item, n > 0."
    assert clean_doc("/// @title Vault\n/// @notice Deposit ether.\n/// @param amount how much", "solidity") == \
        "Deposit ether.\n@param amount how much"
    assert clean_doc("<#\n.SYNOPSIS\n    Copies the build.\n.PARAMETER Target\n    The share.\n#>", "powershell") == \
        "Copies the build.\n\n@parameter Target\nThe share."
    assert clean_doc("/// <summary>Add an <c>item</c>.</summary>", "fsharp") == "Add an item."
    assert clean_doc("%{\nSine of x.\n%}", "matlab") == "Sine of x."
    assert clean_doc("!> Euclidean norm.\n!! More.", "fortran") == "Euclidean norm.\nMore."
    assert clean_doc("-- Total spent.\n-- Per customer.", "sql") == "Total spent.\nPer customer."
    assert clean_doc("# Add C<$count> items.\n# Returns the inventory.", "perl") == "Add $count items.\nReturns the inventory."
    # a POD block from the module's NAME down to the sub's =item: the item's own words, its verbatim example left out
    assert clean_doc("=encoding utf8\n\n=head1 NAME\n\nShop::Inventory - stock levels\n\n=over 4\n\n=item restock($code)"
                     "\n\n  $inv->restock('apple');\n\nAdd one item to the stock.\n\n=cut", "perl") == "Add one item to the stock."
    assert clean_doc("=head1 NAME\n\nShop::Inventory - stock levels\n\n=cut", "perl") == ""  # the module's, not a sub's
    assert clean_doc("/*! @method play\n    @abstract Start playing the queue. */", "objc") == "Start playing the queue."


def test_query_and_function_filters() -> None:
    assert keep_query("Load the stored items from a file.")
    assert not keep_query("Getter.")  # under 3 words
    assert not keep_query("TODO: make this faster please")
    assert not keep_query("See https://example.com for details")
    assert not keep_query("Возвращает список всех элементов коллекции")
    ch = Chunk("a.py", "python", "function", "f", 1, 2, 0, 10, "")  # keep_function reads only the name
    assert not keep_function(ch, "def f():\n    pass")  # fewer than 3 lines
    assert keep_function(ch, "def f():\n    x = 1\n    return x")


def test_query_styles_and_code_variants() -> None:
    rng = random.Random(0)
    assert web_query("Returns the current working directory.", "python", random.Random(1)).islower()
    pair = Pair("pypi:p", "python", "p/m.py", "cwd", "function", 3, "Returns the current working directory.",
                "Returns the current working directory.\n\nMore.", "def cwd():\n    x = 1\n    return x",
                'def cwd():\n    """Returns the current working directory.\n\n    More.\n    """\n    x = 1\n    return x')
    recs = [training_examples(pair, rng) for _ in range(300)]
    variants = {r["code_variant"] for r in recs}
    styles = {r["query_style"] for r in recs}
    assert variants == {"nodoc", "rest", "full"} and styles == {"doc", "web"}
    for r in recs:
        assert r["code"].startswith("p/m.py cwd\n")  # embed_text: path, split name, code
        if r["code_variant"] == "rest":
            assert "Returns the current" not in r["code"] and "More." in r["code"]
        if r["code_variant"] == "nodoc":
            assert '"""' not in r["code"]


def test_repo_split_has_no_leakage(tmp_path: Path) -> None:
    for eco, names in (("pypi", corpus.PYPI_TRAIN[:12] + corpus.PYPI_HELDOUT[:3]),
                       ("npm", corpus.NPM_TRAIN[:4] + corpus.NPM_HELDOUT[:2])):
        for n in names:
            (tmp_path / eco / n.replace("/", "__")).mkdir(parents=True)
    repos = split_repos(discover_repos(tmp_path), valid_fraction=0.2, seed=1)
    by_split: dict[str, set[str]] = {}
    for r in repos:
        by_split.setdefault(r.split, set()).add(r.id)
    assert by_split["heldout"] == {f"pypi:{n}" for n in corpus.PYPI_HELDOUT[:3]} | {
        f"npm:{n}" for n in corpus.NPM_HELDOUT[:2]}
    assert not (by_split["train"] & by_split["heldout"]) and not (by_split["train"] & by_split["valid"])
    assert by_split["valid"] and not (by_split["valid"] & by_split["heldout"])
    assert split_repos(discover_repos(tmp_path), valid_fraction=0.2, seed=1) == repos  # deterministic
    assert all(isinstance(r, Repo) for r in repos)


def test_build_dataset_keeps_heldout_code_out_of_training(tmp_path: Path) -> None:
    src = tmp_path / "src"
    body = b'def shared(x):\n    """Compute the shared value of an input."""\n    y = x * 2\n    return y + 1\n'
    other = b'def only_train(x):\n    """Compute a value only the training repo has."""\n    y = x * 3\n    return y\n'
    held = corpus.PYPI_HELDOUT[0]
    (src / "pypi" / held / held).mkdir(parents=True)
    (src / "pypi" / held / held / "core.py").write_bytes(body)
    (src / "pypi" / "vendoring" / "vendoring").mkdir(parents=True)
    (src / "pypi" / "vendoring" / "vendoring" / "copy.py").write_bytes(body + b"\n\n" + other)
    build_dataset(src, tmp_path / "pairs", stdlib=None)
    train = [json.loads(x) for x in (tmp_path / "pairs" / "train.jsonl").read_text().splitlines()]
    heldout = [json.loads(x) for x in (tmp_path / "pairs" / "heldout.jsonl").read_text().splitlines()]
    valid = (tmp_path / "pairs" / "valid.jsonl").read_text().splitlines()
    assert [h["name"] for h in heldout] == ["shared"]
    assert all(r["name"] != "shared" for r in train)
    assert {r["name"] for r in train} | {json.loads(v)["name"] for v in valid} == {"only_train"}


def test_a_function_shipped_as_typescript_and_compiled_javascript_is_mined_from_the_typescript(
        tmp_path: Path) -> None:
    package = tmp_path / "src" / "npm" / "ethers"
    (package / "src").mkdir(parents=True)
    (package / "_esm").mkdir()
    things = ("balance", "nonce", "block", "receipt", "chain", "gas")
    for thing in things:
        doc = f"/**\n * Returns the {thing} of an account from the node it asks.\n */\n"
        (package / "src" / f"{thing}.ts").write_text(
            f"{doc}export async function get_{thing}(client: Client, address: string): Promise<bigint> {{\n"
            f"  const raw = await client.request({{ method: 'eth_{thing}', params: [address] }});\n"
            "  return BigInt(raw);\n}\n")
        (package / "_esm" / f"{thing}.js").write_text(
            f"{doc}export async function get_{thing}(client, address) {{\n"
            f"    const raw = await client.request({{ method: 'eth_{thing}', params: [address] }});\n"
            "    return BigInt(raw);\n}\n")
    (tmp_path / "src" / "npm" / "reselect").mkdir()  # the one training repository the split moves to valid
    build_dataset(tmp_path / "src", tmp_path / "pairs", stdlib=None)
    records = [json.loads(line) for line in (tmp_path / "pairs" / "train.jsonl").read_text().splitlines()]
    assert sorted(r["name"] for r in records) == sorted(f"get_{t}" for t in things)
    assert {r["language"] for r in records} == {"typescript"}


def test_mine_repository_uses_walker_and_skips_tests(tmp_path: Path) -> None:
    from codeneedle.training.adapt import mine_repository

    (tmp_path / "pkg").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "pkg" / "store.py").write_bytes(PY)
    (tmp_path / "pkg" / "crc.js").write_bytes(JS)
    (tmp_path / "tests" / "test_store.py").write_bytes(PY)
    pairs = mine_repository(tmp_path)
    assert sorted(p.name for p in pairs) == ["Store.load_items", "crc32"]
    assert all(not p.path.startswith("tests/") for p in pairs)


def test_no_heldout_candidate_carries_its_query(tmp_path: Path) -> None:
    """The held-out benchmark searches doc sentences among functions whose doc comments are removed: no
    candidate text may contain its own query (a leak once handed 892 of 1,571 queries their answer verbatim)."""
    src = tmp_path / "src"
    held = corpus.PYPI_HELDOUT[0]
    (src / "pypi" / held / held).mkdir(parents=True)
    (src / "pypi" / held / held / "core.py").write_bytes(PY.replace(b"def test_load_items", b"def check_items"))
    (src / "npm" / corpus.NPM_HELDOUT[0] / "package").mkdir(parents=True)
    (src / "npm" / corpus.NPM_HELDOUT[0] / "package" / "crc.js").write_bytes(JS)
    (src / "npm" / corpus.NPM_HELDOUT[0] / "package" / "dur.go").write_bytes(GO)
    (src / "npm" / corpus.NPM_HELDOUT[0] / "package" / "Form.vue").write_bytes(
        b"<script>\n/** Send the edited user to the server. */\nasync function save(user) {\n"
        b"  await api.put(user.id, user)\n  close()\n}\n</script>\n")
    (src / "npm" / corpus.NPM_HELDOUT[0] / "package" / "sales.ipynb").write_bytes(NOTEBOOK)
    for files, _, _ in NEW_LANGUAGES.values():  # with their tests, which must stay out
        for rel, data in files.items():
            (src / "npm" / corpus.NPM_HELDOUT[0] / "package" / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / "npm" / corpus.NPM_HELDOUT[0] / "package" / rel).write_bytes(data)
    build_dataset(src, tmp_path / "pairs", stdlib=None)
    pool = {(r["repo"], r["id"]): r for r in map(json.loads, (tmp_path / "pairs" / "heldout_corpus.jsonl")
                                                 .read_text().splitlines())}
    queries = [json.loads(x) for x in (tmp_path / "pairs" / "heldout.jsonl").read_text().splitlines()]
    assert {q["name"] for q in queries} == {"Store.load_items", "crc32", "ParseDuration", "save", "load_sales",
                                            *(name for _, name, _ in NEW_LANGUAGES.values())}
    for q in queries:
        target = pool[(q["repo"], q["target"])]
        words = " ".join(q["query"].lower().rstrip(".").split())
        for cand in (c for (repo, _), c in pool.items() if repo == q["repo"]):
            assert words not in " ".join(cand["code"].lower().split()), (q["query"], cand["code"])
        assert q["name"].rsplit(".", 1)[-1] in target["code_plain"]  # the answer is in the pool, doc-free


def test_dropping_the_first_sentence_keeps_a_signature_the_docstring_repeats() -> None:
    from codeneedle.training.mining import _drop_first_sentence

    code = "def scale(value, factor):\n    x = value * factor\n    return x"
    with_doc = ('def scale(value, factor):\n    """scale(value, factor): multiply the value.\n\n    Details here.\n'
                '    """\n    x = value * factor\n    return x')
    out = _drop_first_sentence(with_doc, "scale(value, factor): multiply the value.", code)
    assert out.startswith("def scale(value, factor):\n")
    assert "multiply the value" not in out and "Details here." in out
    js_code = "function crc32(buf) {\n  return 0;\n}"
    js = "/**\n * crc32(buf) computes a checksum.\n */\n" + js_code
    assert _drop_first_sentence(js, "crc32(buf) computes a checksum.", js_code).endswith(js_code)


def test_extra_query_styles_come_from_the_doc_and_the_name() -> None:
    from codeneedle.training.mining import STYLE_MIX, doc_params, doc_sentences, name_query

    doc = ("Load the stored items from a JSON file. Items past the limit are silently dropped.\n\n"
           "Args:\n    path: where the stored file lives on disk.\n    limit: x\n\n"
           "Returns:\n    the list of decoded item records.")
    assert doc_sentences(doc) == ["Items past the limit are silently dropped."]
    assert doc_params(doc) == ["where the stored file lives on disk", "the list of decoded item records"]
    assert doc_params("Send it.\n@param {string} url the address to fetch from\n@returns the response body text") \
        == ["the address to fetch from", "the response body text"]
    assert name_query("Store.load_items") == "store load items"
    pair = Pair("pypi:p", "python", "p/m.py", "Store.load_items", "method", 3, "Load the stored items from a JSON file.",
                doc, "def load_items(self, path, limit):\n    x = 1\n    return x",
                f'def load_items(self, path, limit):\n    """{doc}"""\n    x = 1\n    return x')
    rng = random.Random(0)
    recs = [training_examples(pair, rng, {**STYLE_MIX, "name": 0.3, "sentence": 0.3, "param": 0.3})
            for _ in range(200)]
    styles = {r["query_style"] for r in recs}
    assert styles == {"doc", "web", "name", "sentence", "param"}
    for r in recs:
        if r["query_style"] in ("sentence", "param", "name"):
            assert r["code_variant"] == "nodoc" and '"""' not in r["code"]
    # off by default: the shipped recipe's data is unchanged
    rng = random.Random(1)
    assert {r["query_style"] for r in (training_examples(pair, rng) for _ in range(100))} == {"doc", "web"}


def test_a_debian_rust_crate_is_a_repository_of_its_own(tmp_path: Path) -> None:
    crate = tmp_path / "debian" / "librust-tinyqueue-dev" / "usr" / "share" / "cargo" / "registry" / "tinyqueue-0.3.1"
    (crate / "src").mkdir(parents=True)
    (crate / "src" / "lib.rs").write_text(
        "pub struct Queue { items: Vec<u32> }\n\nimpl Queue {\n"
        "    /// Removes the oldest item and returns it, if there is one.\n"
        "    pub fn pop_front(&mut self) -> Option<u32> {\n"
        "        if self.items.is_empty() { None } else { Some(self.items.remove(0)) }\n    }\n}\n")
    (repo,) = discover_repos(tmp_path)
    assert repo.id == "crate:tinyqueue" and repo.root == crate
    pairs, _ = mine_repo(repo)
    assert [(p.name, p.query) for p in pairs] == [("Queue.pop_front", "Removes the oldest item and returns it, if there is one.")]
    assert "oldest" not in pairs[0].code


@pytest.mark.parametrize("language", sorted(NEW_LANGUAGES))
def test_each_language_the_indexer_chunks_gives_its_documented_function(tmp_path: Path, language: str) -> None:
    files, name, query = NEW_LANGUAGES[language]
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    pairs, pool = mine_repo(Repo("r", tmp_path, "heldout"))
    assert [(p.language, p.name, p.query) for p in pairs] == [(language, name, query)]
    (pair,) = pairs
    ending = " ".join(query.rstrip(".").split()[-3:])  # words the doc comment holds as written, markup aside
    assert pair.code_with_doc.endswith("\n" + pair.code) and ending in pair.code_with_doc and ending not in pair.code
    # the candidate pool: every function outside the tests, doc-free as the encoder reads it
    assert name in [c.name for c in pool] and not any(is_test_path(c.path) for c in pool)
    words = " ".join(query.lower().rstrip(".").split())
    assert all(ending not in embed_text(c) and words not in " ".join(embed_text(c).lower().split()) for c in pool)
    assert LANGUAGE_NAMES[language]  # the word a web-style query names it by


def test_a_julia_doc_macro_on_the_definitions_line_leaves_the_definition() -> None:
    source = b'@doc "Double every value of a vector in place." function twice!(v)\n' \
             b"    for i in eachindex(v)\n        v[i] *= 2\n    end\n    v\nend\n"
    (pair,) = mine_file("src/vectors.jl", source, "r")
    assert pair.query == "Double every value of a vector in place."
    assert pair.code.startswith("function twice!(v)\n") and "Double" not in pair.code and "@doc" not in pair.code
    (candidate,) = function_chunks("src/vectors.jl", source)
    assert candidate.text == pair.code


def test_a_haddock_block_comment_is_a_doc_and_leaves_the_code() -> None:
    source = (b"{- | Push a value on top of the stack, unless it is full.\n   Full means 100 values. -}\n"
              b"push :: a -> [a] -> [a]\npush x xs\n  | length xs >= 100 = xs\n  | otherwise = x : xs\n")
    (pair,) = mine_file("src/Stack.hs", source, "r")
    assert pair.query == "Push a value on top of the stack, unless it is full."
    assert pair.code.startswith("push :: a") and "{-" not in pair.code and "Push" not in pair.code


def test_an_ocaml_implementation_takes_the_docs_of_its_interface(tmp_path: Path) -> None:
    """OCaml documents a module in its .mli: the .ml's definitions pair with those docs (their own one first)."""
    from codeneedle.training.adapt import mine_repository

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "stack.mli").write_bytes(b"""type 'a t

val push : 'a -> 'a t -> unit
(** [push x s] adds [x] at the top of stack [s]. *)

(** Remove and return the top element, or [None] when the stack is empty. *)
val pop : 'a t -> 'a option

val clear : 'a t -> unit
(** Discard every element. *)
""")
    (tmp_path / "src" / "stack.ml").write_bytes(b"""type 'a t = { mutable items : 'a list }

let push x s =
  let items = x :: s.items in
  s.items <- items

let pop s =
  match s.items with
  | [] -> None
  | x :: rest -> s.items <- rest; Some x

(** Empty the stack in one step, whatever it holds. *)
let clear s =
  let () = s.items <- [] in
  ()
""")
    pairs, pool = mine_repo(Repo("r", tmp_path, "heldout"))
    assert [(p.path, p.name, p.query) for p in pairs] == [
        ("src/stack.ml", "push", "push x s adds x at the top of stack s."),
        ("src/stack.ml", "pop", "Remove and return the top element, or None when the stack is empty."),
        ("src/stack.ml", "clear", "Empty the stack in one step, whatever it holds.")]
    assert pairs[1].code.startswith("let pop s =") and pairs[1].code_with_doc.startswith("(** Remove and return")
    assert [c.path for c in pool] == ["src/stack.ml"] * 3 and all("Remove and return" not in c.text for c in pool)
    assert [p.name for p in mine_repository(tmp_path)] == ["push", "pop", "clear"]  # `needle train --repo` too


def test_scripts_of_components_and_notebook_cells_are_mined_where_the_file_has_them() -> None:
    vue = b"""<template>
  <button @click="save">Save</button>
</template>

<script setup lang="ts">
/** Send the edited user to the server and close the form. */
async function save(): Promise<void> {
  await api.put(`/users/${user.id}`, user)
  emit('close')
}

function reset(): void {
  Object.assign(user, saved)
  emit('reset')
}
</script>
"""
    (pair,) = mine_file("src/UserForm.vue", vue, "r")
    assert (pair.language, pair.name, pair.start_line) == ("typescript", "save", 7)  # the .vue file's own line
    assert pair.query == "Send the edited user to the server and close the form." and "/**" not in pair.code
    notebook = NOTEBOOK
    (pair,) = mine_file("sales.ipynb", notebook, "r")
    assert (pair.language, pair.name, pair.query) == ("python", "load_sales",
                                                     "Read the monthly sales CSV into a data frame, months parsed.")
    assert pair.code.startswith("def load_sales(path):\n    frame = pd.read_csv(path)") and '"""' not in pair.code
    def_line = notebook.decode().splitlines().index('    "def load_sales(path):\\n",') + 1
    assert pair.start_line == def_line  # where the index shows it, in the notebook's own lines
    pool = function_chunks("sales.ipynb", notebook)
    assert [(c.name, c.start_line) for c in pool] == [("load_sales", def_line), ("totals", def_line + 6)]
    assert all("monthly sales" not in embed_text(c) for c in pool)


def test_help_under_a_matlab_function_line_or_atop_a_powershell_body_is_a_doc_and_leaves_the_code() -> None:
    """MATLAB's help sits under the function line and names the function in capitals; PowerShell's may open the
    body: the pair's code is the function without those lines, the query their first sentence."""
    matlab = (b"function avg = moving_average(values, width)\n%MOVING_AVERAGE Average of each window of WIDTH values.\n"
              b"%   AVG = MOVING_AVERAGE(V, W) slides a window of W values over V.\nkernel = ones(1, width) / width;\n"
              b"avg = conv(values, kernel, 'valid');\nend\n")
    (pair,) = mine_file("signal/moving_average.m", matlab, "r")
    assert (pair.language, pair.name, pair.query) == ("matlab", "moving_average", "Average of each window of WIDTH values.")
    assert "%" not in pair.code and pair.code.startswith("function avg") and "%MOVING" in pair.code_with_doc
    powershell = (b"function Get-DeployTarget {\n    <#\n    .SYNOPSIS\n    Gets the share of an environment.\n    #>\n"
                  b"    param([string]$Name)\n    $settings = Get-Content deploy.json | ConvertFrom-Json\n"
                  b"    $settings.$Name\n}\n")
    (pair,) = mine_file("tools/Deploy.ps1", powershell, "r")
    assert (pair.name, pair.query) == ("Get-DeployTarget", "Gets the share of an environment.")
    assert "SYNOPSIS" not in pair.code and "param" in pair.code


def test_terraform_blocks_and_fsharp_signatures_give_no_pairs() -> None:
    """A Terraform block is a class (no function to pair), an .fsi signature a `val` without code."""
    terraform = b'# Bucket that receives the load balancer access logs.\nresource "aws_s3_bucket" "logs" {\n' \
                b'  bucket = "logs"\n  acl    = "private"\n  tags   = {}\n}\n'
    signature = b"module Shop.Inventory\n\n/// Add an item in front of the stock, keeping the others.\n" \
                b"val add : Item -> Item list -> Item list\n"
    assert mine_file("infra/main.tf", terraform, "r") == [] and not minable("hcl")
    assert mine_file("src/Inventory.fsi", signature, "r") == [] and not minable("fsharp_signature")


def test_formats_and_interfaces_without_code_to_pair_give_nothing() -> None:
    markdown = b'# Usage\n\n```python\ndef load(path):\n    """Load the stored items from a JSON file."""\n' \
               b'    with open(path) as fh:\n        return json.load(fh)\n```\n'
    interface = b"(** [find c k] is the value under [k], now the most recent. *)\n" \
                b"val find :\n  ('k, 'v) t ->\n  'k -> 'v option\n"
    assert mine_file("README.md", markdown, "r") == [] and function_chunks("README.md", markdown) == []
    assert mine_file("src/lru.mli", interface, "r") == []
    assert not minable("markdown") and not minable("ocaml_interface") and minable("vue") and minable("jupyter")
