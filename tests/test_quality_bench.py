"""The quality benchmark asks only what the product can answer: its queries come from the files an index holds."""

import sys
from pathlib import Path

from codeneedle.indexer.index import Index

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import quality  # noqa: E402

BUNDLE = "(function(){/* browserify bundle generated */})();\n/** Adds a node to the graph. */\nfunction addNode(g, v) {}\n"


def test_the_benchmark_reads_exactly_the_files_the_index_holds(tmp_path):
    repo = tmp_path / "pkg"
    (repo / "lib").mkdir(parents=True)
    (repo / "package.json").write_text('{"name": "pkg"}\n')
    (repo / "lib" / "graph.js").write_text("/** Adds a node to the graph. */\nfunction addNode(g, v) {\n"
                                           "  g.nodes.push(v);\n}\nmodule.exports = addNode;\n")
    (repo / "dist").mkdir()  # build output beside lib/ and a manifest
    (repo / "dist" / "pkg.js").write_text(BUNDLE)
    (repo / "vendor.js").write_text("// browserify bundle build\n" + BUNDLE)  # a bundler's banner
    (repo / "app.min.js").write_text("function a(b){return b}" + ";var c=1" * 2000 + "\n")  # minified
    (repo / ".hidden").mkdir()
    (repo / ".hidden" / "x.js").write_text("/** Hidden. */\nfunction hidden() {}\n")

    found = {rel for rel, _ in quality.indexed_files(repo)}
    with Index.open(repo) as index:
        index.update()
        held = set(index.store.file_records())

    assert found == held
    assert "lib/graph.js" in found
    assert not found & {"dist/pkg.js", "vendor.js", "app.min.js", ".hidden/x.js"}
