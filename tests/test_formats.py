"""Code inside other formats, specified on small real files (tests/fixtures/formats): the scripts of Vue and Svelte
components and HTML pages, the cells of a Jupyter notebook, the sections of a Markdown document. The real chunker
and tree-sitter throughout; every position is the file's own, so a result opens at the right line."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeneedle.indexer.chunker import WINDOW_LINES, chunk_notebook_cell, chunk_source
from codeneedle.indexer.chunks import Chunk
from codeneedle.indexer.languages import language_for_path
from codeneedle.indexer.search import Filters, language_filter
from codeneedle.indexer.walker import looks_minified, walk
from tests.conftest import run_needle

FORMATS = Path(__file__).parent / "fixtures" / "formats"


def chunks_of(name: str, data: bytes | None = None) -> list[Chunk]:
    data = (FORMATS / name).read_bytes() if data is None else data
    return chunk_source(name, data, language_for_path(name))


def outline(chunks: list[Chunk]) -> list[tuple[str, str, str, int, int]]:
    return [(c.language, c.kind, c.name, c.start_line, c.end_line) for c in chunks]


def line(name: str, number: int) -> str:
    return (FORMATS / name).read_text().splitlines()[number - 1]


# -- components and pages ----------------------------------------------------------------------------


def test_a_vue_components_options_api_methods_are_javascript_functions_at_their_lines() -> None:
    assert outline(chunks_of("UserCard.vue")) == [
        ("vue", "text", "UserCard.vue", 1, 8),  # the template, up to and with the <script> tag
        ("javascript", "block", "UserCard", 9, 14),
        ("javascript", "function", "fullName", 15, 17),
        ("javascript", "block", "UserCard", 19, 19),
        ("javascript", "function", "save", 21, 23),
        ("vue", "text", "UserCard.vue", 26, 30),  # </script> and the styles
    ]
    save = next(c for c in chunks_of("UserCard.vue") if c.name == "save")
    assert save.doc == "Send the edited user to the server."
    assert line("UserCard.vue", save.start_line).strip() == "async save() {"


def test_svelte_scripts_in_typescript_are_typescript_chunks_with_their_docs() -> None:
    chunks = chunks_of("Counter.svelte")
    assert outline(chunks) == [
        ("typescript", "block", "Counter", 2, 2),  # <script context="module">
        ("typescript", "block", "Counter", 6, 7),  # (no chunk for the script tags between them)
        ("typescript", "function", "increment", 10, 12),
        ("svelte", "text", "Counter.svelte", 13, 21),
    ]
    increment = chunks[2]
    assert increment.doc == "Add `by` to the count shown on the button."
    assert (increment.doc_start_line, increment.doc_end_line) == (9, 9)


@pytest.mark.parametrize("name", ["UserCard.vue", "Counter.svelte"])
def test_every_chunk_of_a_component_is_its_own_bytes_and_lines_of_the_file(name: str) -> None:
    data = (FORMATS / name).read_bytes()
    chunks = chunks_of(name)
    for c in chunks:
        assert c.text == data[c.start_byte : c.end_byte].decode()
        assert data[: c.start_byte].count(b"\n") + 1 == c.start_line
        assert data[: c.end_byte - 1].count(b"\n") + 1 == c.end_line
    spans = sorted((c.start_byte, c.end_byte) for c in chunks)
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False))


def test_the_markup_and_styles_around_the_scripts_stay_searchable_as_text() -> None:
    text = "".join(c.text for c in chunks_of("UserCard.vue") if c.kind == "text")
    assert '<button @click="save">Save</button>' in text and ".card { padding: 1em; }" in text
    assert "api.put" not in text


def test_script_setup_in_typescript_with_a_generic_attribute_is_typescript() -> None:
    source = (b'<script setup lang="ts" generic="T extends Map<string, number>">\n'
              b"const props = defineProps<{ items: T[] }>()\n"
              b"function pick(item: T): void {\n"
              b"  emit('pick', item)\n"
              b"}\n"
              b"</script>\n"
              b"<template><li v-for=\"i in props.items\" @click=\"pick(i)\" /></template>\n")
    assert outline(chunk_source("src/List.vue", source, "vue")) == [
        ("typescript", "block", "List", 2, 2),
        ("typescript", "function", "pick", 3, 5),
        ("vue", "text", "List.vue", 6, 7),
    ]


def test_html_pages_chunk_their_scripts_but_not_data_templates_or_commented_out_code() -> None:
    source = (b"<!doctype html>\n"
              b'<script src="vendor.js"></script>\n'
              b'<script type="application/json">{"debug": true}</script>\n'
              b"<!-- <script>function disabled() {}</script> -->\n"
              b'<script type="text/x-template" id="row"><tr>{{ name }}</tr></script>\n'
              b'<script type="module">\n'
              b"  export function startClock(el) {\n"
              b"    setInterval(() => { el.textContent = new Date().toISOString() }, 1000)\n"
              b"  }\n"
              b"</script>\n")
    chunks = chunk_source("site/index.html", source, language_for_path("index.html"))
    assert [(c.language, c.kind, c.name, c.start_line) for c in chunks if c.kind != "text"] == [
        ("javascript", "function", "startClock", 7)]
    assert all(c.language == "html" for c in chunks if c.kind == "text")
    assert '{"debug": true}' in "".join(c.text for c in chunks)  # data stays text, findable all the same


def test_an_astro_components_frontmatter_is_typescript() -> None:
    source = (b"---\n"
              b"import Layout from '../layouts/Layout.astro'\n"
              b"function title(post: { name: string }): string {\n"
              b"  return post.name.toUpperCase()\n"
              b"}\n"
              b"---\n"
              b"<Layout><h1>{title(Astro.props.post)}</h1></Layout>\n")
    chunks = chunk_source("src/pages/post.astro", source, language_for_path("post.astro"))
    assert [(c.language, c.kind, c.name, c.start_line, c.end_line) for c in chunks] == [
        ("typescript", "block", "post", 2, 2),
        ("typescript", "function", "title", 3, 5),
        ("astro", "text", "post.astro", 6, 7),
    ]


# -- notebooks ---------------------------------------------------------------------------------------


def test_a_notebooks_cells_are_chunked_at_the_lines_of_the_ipynb_where_their_source_is_written() -> None:
    chunks = chunks_of("sales.ipynb")
    assert outline(chunks) == [
        ("markdown", "text", "Sales analysis", 8, 10),
        ("python", "block", "sales", 31, 32),  # `%matplotlib inline` and the import
        ("python", "function", "load_sales", 35, 37),
        ("python", "block", "sales", 39, 39),
        ("python", "class", "Trend", 48, 48),  # source written as one string: the line it is on
        ("python", "method", "Trend.fit", 48, 48),
        ("jupyter", "text", "sales.ipynb", 65, 66),  # a %%bash cell is no Python
        ("markdown", "text", "Results", 74, 76),
    ]
    load = chunks[2]
    assert line("sales.ipynb", load.start_line).strip() == '"def load_sales(path):\\n",'
    assert load.text.startswith("def load_sales(path):\n    ")
    assert load.doc == "Read the monthly sales CSV into a data frame."
    assert (load.doc_start_line, load.doc_end_line) == (36, 36)
    assert chunks[1].text == "%matplotlib inline\nimport pandas as pd"  # the magic as written, parsed as a comment


def test_a_notebooks_chunks_know_their_cell_and_their_lines_in_it() -> None:
    """What a notebook editor shows: cells counted from 1 (code and markdown alike) and lines inside each cell,
    also where a cell's source is one string, all on one line of the .ipynb."""
    assert [(c.name, c.cell, c.cell_start_line, c.cell_end_line) for c in chunks_of("sales.ipynb")] == [
        ("Sales analysis", 1, 1, 3),
        ("sales", 2, 1, 2),
        ("load_sales", 2, 5, 7),
        ("sales", 2, 9, 9),
        ("Trend", 3, 1, 3),
        ("Trend.fit", 3, 2, 3),  # on line 48 of the file, with its class
        ("sales.ipynb", 4, 1, 2),
        ("Results", 5, 1, 3),
    ]
    assert all(c.cell == 0 for c in chunks_of("UserCard.vue"))


def test_every_cell_counts_in_the_numbering_even_one_that_is_not_read() -> None:
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "source": ["x = 1\n"]}, "not a cell",
                          {"cell_type": "code", "metadata": {}, "source": []},
                          {"cell_type": "code", "metadata": {}, "outputs": [], "source": ["def f():\n", "    pass"]}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    chunks = chunk_source("n.ipynb", json.dumps(notebook, indent=1).encode(), "jupyter")
    assert [(c.name, c.cell, c.cell_start_line) for c in chunks] == [("n", 1, 1), ("f", 4, 1)]


def test_an_unsaved_cell_is_chunked_as_indexing_will_read_it_once_saved() -> None:
    saved = (FORMATS / "sales.ipynb").read_bytes()
    edited = "%matplotlib inline\n\ndef load_sales(path, sep=','):\n    return pd.read_csv(path, sep=sep)\n"
    chunks = chunk_notebook_cell("sales.ipynb", saved, 2, edited)
    assert [(c.language, c.kind, c.name, c.cell, c.cell_start_line, c.cell_end_line) for c in chunks] == [
        ("python", "block", "sales", 2, 1, 1), ("python", "function", "load_sales", 2, 3, 4)]
    assert chunks[0].text == "%matplotlib inline"  # a magic, as in a saved cell
    # A markdown cell is read as one (named under the headings above it); a new cell past the last as code.
    (section,) = chunk_notebook_cell("sales.ipynb", saved, 5, "The trend is down.\n")
    assert (section.language, section.name, section.cell_start_line) == ("markdown", "Sales analysis", 1)
    (new,) = chunk_notebook_cell("sales.ipynb", saved, 9, "def total(rows):\n    return sum(rows)\n")
    assert (new.language, new.name, new.cell) == ("python", "total", 9)
    assert [c.name for c in chunk_notebook_cell("gone.ipynb", b"", 1, "def f():\r\n    pass\r\n")] == ["f"]


def test_a_notebooks_outputs_are_not_indexed() -> None:
    text = "".join(c.text for c in chunks_of("sales.ipynb"))
    assert "image/png" not in text and "Figure size" not in text and "iVBOR" not in text
    assert "execution_count" not in text and "ok\n" not in text


@pytest.mark.parametrize(
    ("source", "kinds"),
    [
        (b"{not json", ["text"]),
        (b'{"cells": "none"}', ["text"]),
        (b"[1, 2, 3]", ["text"]),
        (b"", []),
    ],
)
def test_what_is_no_notebook_is_read_as_text_windows_without_an_error(source: bytes, kinds: list[str]) -> None:
    chunks = chunk_source("broken.ipynb", source, "jupyter")
    assert [c.kind for c in chunks] == kinds
    assert all(c.language == "text" for c in chunks)


def test_a_notebook_written_on_one_line_puts_its_chunks_on_that_line() -> None:
    packed = json.dumps(json.loads((FORMATS / "sales.ipynb").read_bytes()), separators=(",", ":")).encode()
    chunks = chunk_source("sales.ipynb", packed, "jupyter")
    assert {c.name for c in chunks} >= {"load_sales", "Trend.fit", "Sales analysis"}
    assert {(c.start_line, c.end_line) for c in chunks} == {(1, 1)}
    assert all(0 <= c.start_byte < c.end_byte <= len(packed) for c in chunks)


def test_a_notebooks_markdown_cells_are_named_under_the_headings_of_the_cells_above_them() -> None:
    cells = [("# Sales\n", "Intro."), ("## Results\n",), ("The trend is up.\n", "### Plot\n", "A line."),
             ("## Next\n", "More.")]
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": list(c)} for c in cells],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    chunks = chunk_source("report.ipynb", json.dumps(notebook, indent=1).encode(), "jupyter")
    assert [(c.name, c.text.split("\n")[0]) for c in chunks] == [
        ("Sales", "# Sales"),
        ("Results", "## Results"),
        ("Results", "The trend is up."),  # a cell without a heading of its own is in the section above it
        ("Results > Plot", "### Plot"),
        ("Next", "## Next"),
    ]


def test_a_notebook_in_a_language_without_a_grammar_keeps_its_code_as_text() -> None:
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "source": ["fit <- lm(y ~ x)\n"]}],
                "metadata": {"kernelspec": {"language": "R", "name": "ir"}}, "nbformat": 4, "nbformat_minor": 5}
    data = json.dumps(notebook, indent=1).encode()
    assert outline(chunk_source("model.ipynb", data, "jupyter")) == [("jupyter", "text", "model.ipynb", 8, 8)]


# -- Markdown and reStructuredText --------------------------------------------------------------------


def test_markdown_is_cut_at_its_headings_and_named_after_them() -> None:
    assert outline(chunks_of("guide.md")) == [
        ("markdown", "text", "guide.md", 1, 3),  # the front matter
        ("markdown", "text", "Shop guide", 4, 6),  # the title: left out of the names below it
        ("markdown", "text", "Install", 8, 13),  # `# install from PyPI` in its code fence is no heading
        ("markdown", "text", "Install > From source", 15, 17),
        ("markdown", "text", "Usage", 19, 22),  # a setext heading
    ]


def test_a_heading_with_only_a_sub_heading_under_it_joins_that_section() -> None:
    source = b"# API\n\n## Client\n\nConnects.\n\n## Server\n\nListens.\n"
    assert [(c.name, c.start_line, c.end_line) for c in chunk_source("api.md", source, "markdown")] == [
        ("Client", 1, 5), ("Server", 7, 9)]


def test_a_long_section_is_still_windowed_under_its_heading_name() -> None:
    source = b"# Changelog\n\n## 2.0\n\n" + b"".join(b"- fixed bug %d\n" % i for i in range(2 * WINDOW_LINES))
    chunks = chunk_source("CHANGES.md", source, "markdown")
    assert [c.name for c in chunks] == ["2.0", "2.0", "2.0"]
    assert [c.start_line for c in chunks] == [1, 41, 81]


def test_restructured_text_sections_are_named_by_their_underlined_titles() -> None:
    source = (b"=======\nProject\n=======\n\nIntro.\n\nInstall\n-------\n\nUse pip.\n\n"
              b"Upgrading\n~~~~~~~~~\n\nRead the notes.\n")
    chunks = chunk_source("docs/index.rst", source, language_for_path("index.rst"))
    assert [(c.language, c.name, c.start_line, c.end_line) for c in chunks] == [
        ("restructuredtext", "Project", 1, 5),
        ("restructuredtext", "Install", 7, 10),
        ("restructuredtext", "Install > Upgrading", 12, 15),
    ]


# -- filters, size cap, minified screening ------------------------------------------------------------


# -- Quarto and R Markdown ------------------------------------------------------------------------------


def test_a_quarto_reports_python_chunks_are_python_at_their_lines_and_its_prose_sections() -> None:
    assert outline(chunks_of("report.qmd")) == [
        ("quarto", "text", "report.qmd", 1, 4),  # the front matter
        ("quarto", "text", "Loading", 6, 8),
        ("python", "block", "report", 12, 12),  # `#| label: load` is a chunk option, not code
        ("python", "function", "load_sales", 14, 16),
        ("quarto", "text", "Loading > Cleaning", 19, 30),  # R has no grammar here, and a bare fence only shows code
        ("quarto", "text", "Summary", 32, 32),
        ("python", "function", "monthly_total", 35, 36),
    ]
    load = next(c for c in chunks_of("report.qmd") if c.name == "load_sales")
    assert load.doc == "Read the monthly sales table." and line("report.qmd", 14) == "def load_sales(path):"
    cleaning = next(c for c in chunks_of("report.qmd") if c.name == "Loading > Cleaning")
    assert "clean <- function(df)" in cleaning.text and "def shown_only" in cleaning.text


def test_r_markdown_chunks_name_their_engine_before_options_and_an_unclosed_one_runs_to_the_end() -> None:
    assert outline(chunks_of("churn.Rmd")) == [
        ("rmarkdown", "text", "churn.Rmd", 1, 8),  # front matter and the R setup chunk
        ("rmarkdown", "text", "Model", 10, 10),
        ("python", "function", "churn_rate", 13, 14),  # {python, echo=FALSE}
        ("bash", "block", "churn", 18, 18),
        ("python", "function", "unfinished", 22, 23),
    ]


def test_quarto_chunk_options_are_no_doc_and_fences_are_read_as_knitr_and_commonmark_read_them() -> None:
    source = (b"# Churn\n\nInline ```js``` code is no fence.\n\n```{python}\n#| echo: false\ndef churn(rows):\n"
              b"    return len(rows)\n```\n\n1. A step:\n\n    ```{python}\n    def step(x):\n        return x\n    ```\n")
    chunks = chunks_of("churn.qmd", source)
    assert [(c.kind, c.name, c.start_line, c.doc) for c in chunks if c.language == "python"] == [
        ("function", "churn", 7, ""), ("function", "step", 14, "")]
    sql = chunks_of("q.Rmd", b"```{sql, connection=con}\n-- Orders per customer.\nCREATE VIEW per_customer AS "
                              b"SELECT customer, count(*) FROM orders GROUP BY customer;\n```\n")
    assert [(c.language, c.kind, c.name, c.start_line, c.doc) for c in sql] == [
        ("sql", "class", "per_customer", 3, "Orders per customer.")]


@pytest.mark.parametrize("line", [b"```{" + b"a" * 200_000, b"```{python " + b"x" * 200_000, b"```" + b"`" * 200_000])
def test_a_hostile_fence_line_is_read_in_linear_time(line: bytes) -> None:
    began = time.perf_counter()
    chunks_of("hostile.qmd", b"# T\n\n" + line + b"\n")
    assert time.perf_counter() - began < 2.0  # the first took 2.1 s at 40 KB, minutes at the size cap


def test_many_sections_and_chunks_are_cut_apart_in_linear_time() -> None:
    piece = b"## Part\n\nSome words.\n\n```{python}\ndef f():\n    return 1\n```\n\n"
    began = time.perf_counter()
    chunks = chunks_of("long.qmd", piece * 4000)
    assert time.perf_counter() - began < 20 and sum(c.language == "python" for c in chunks) == 4000


def test_a_quarto_or_r_markdown_filter_selects_its_files_and_python_the_python_in_them() -> None:
    assert language_filter("qmd,rmd") == ("quarto", "rmarkdown")
    quarto = Filters(language_filter("quarto"))
    assert quarto.allows("report.qmd", "python", "function") and quarto.allows("report.qmd", "quarto", "text")
    assert not quarto.allows("churn.Rmd", "python", "function")
    assert Filters(language_filter("python")).allows("report.qmd", "python", "function")
    assert not Filters(language_filter("markdown")).allows("report.qmd", "quarto", "text")


def test_a_formats_name_selects_its_files_and_a_languages_name_the_code_inside_them() -> None:
    vue = Filters(language_filter("vue"))
    assert vue.allows("src/UserCard.vue", "javascript", "function") and vue.allows("src/UserCard.vue", "vue", "text")
    assert not vue.allows("src/user.js", "javascript", "function")
    typescript = Filters(language_filter("ts"))
    assert typescript.allows("src/Counter.svelte", "typescript", "function")
    assert not typescript.allows("src/Counter.svelte", "svelte", "text")
    assert language_filter("ipynb,md") == ("jupyter", "markdown")
    assert language_filter("mdx") == ("markdown",)  # MDX is read as Markdown: its extension names it too
    assert Filters(language_filter("mdx")).allows("docs/intro.mdx", "markdown", "text")
    assert Filters(language_filter("notebook")).allows("sales.ipynb", "python", "function")


def plotted_notebook() -> bytes:
    """sales.ipynb with a bigger plot: mostly long lines of base64, as notebooks with figures are."""
    notebook = json.loads((FORMATS / "sales.ipynb").read_bytes())
    plot = base64.b64encode(b"".join(hashlib.sha512(b"%d" % i).digest() for i in range(600))).decode()
    notebook["cells"][1]["outputs"][0]["data"]["image/png"] = plot + "\n"
    return (json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def test_a_notebook_may_pass_the_size_cap_as_its_outputs_are_not_indexed(tmp_path) -> None:
    data = plotted_notebook()
    (tmp_path / "sales.ipynb").write_bytes(data)
    (tmp_path / "sales.txt").write_bytes(data)
    walked = walk(tmp_path, max_file_bytes=len(data) // 2)
    assert [f.path for f in walked.files] == ["sales.ipynb"]
    assert walked.skipped_paths == [("sales.txt", "too_large")]


# -- through the command line -------------------------------------------------------------------------


@pytest.mark.slow
def test_needle_search_finds_a_vue_method_by_name_at_its_line_and_notebook_and_quarto_code_by_meaning(tmp_path):
    repo = tmp_path / "shop"
    (repo / "src").mkdir(parents=True)
    shutil.copy(FORMATS / "UserCard.vue", repo / "src" / "UserCard.vue")
    shutil.copy(FORMATS / "guide.md", repo / "guide.md")
    shutil.copy(FORMATS / "report.qmd", repo / "report.qmd")
    (repo / "sales.ipynb").write_bytes(plotted_notebook())
    assert looks_minified(plotted_notebook())  # its plot's base64 lines; indexed all the same
    assert run_needle("index", "-q", str(repo)).returncode == 0

    proc = run_needle("search", "--json", "-k", "3", "--path", str(repo), "save")
    assert proc.returncode == 0, proc.stderr
    top = json.loads(proc.stdout)["results"][0]
    assert (top["path"], top["name"], top["kind"], top["language"], top["start_line"]) == (
        "src/UserCard.vue", "save", "function", "javascript", 21)

    proc = run_needle("search", "--json", "-k", "3", "--lang", "jupyter", "--path", str(repo),
                      "read the monthly sales csv file")
    assert proc.returncode == 0, proc.stderr
    top = json.loads(proc.stdout)["results"][0]
    assert (top["path"], top["name"], top["start_line"]) == ("sales.ipynb", "load_sales", 35)
    assert (top["cell"], top["cell_start_line"], top["cell_end_line"]) == (2, 5, 7)  # the cell, for people and tools

    proc = run_needle("search", "--json", "-k", "3", "--lang", "qmd", "--path", str(repo), "read the sales table")
    assert proc.returncode == 0, proc.stderr
    top = json.loads(proc.stdout)["results"][0]
    assert (top["path"], top["name"], top["language"], top["start_line"]) == ("report.qmd", "load_sales", "python", 14)


# -- any input ---------------------------------------------------------------------------------------

FORMAT_TOKENS = [
    "<script>", "<script setup lang=\"ts\">", "<script type=\"application/json\">", "</script>", "<script src=x />",
    "<!--", "-->", "<template>", "</template>", "---\n", "# ", "## ", "```", "~~~", "===\n", "-----\n", "\n", "\n\n",
    " ", "function f() {", "}", "def g():\n    return 1\n", "export default { methods: { save() {} } }", "é",
    '{"cells": [', '{"cell_type": "code", "source": ["', '{"cell_type": "markdown", "source": "', '\\n", "', '"]}',
    "]}", "```{python}\n", "```{r, echo=FALSE}\n", "~~~{bash}\n", '"', "\\", ",", ":", "%%bash\\n", "%time ", "\r\n", "\x00",
]  # fmt: skip
FORMAT_FILES = ["App.vue", "App.svelte", "page.astro", "index.html", "book.ipynb", "notes.md", "index.rst",
                "report.qmd", "churn.Rmd"]


class _Fallbacks(logging.Handler):
    """Warnings the chunker logs when it falls back after an internal error."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tokens=st.lists(st.sampled_from(FORMAT_TOKENS), max_size=200), name=st.sampled_from(FORMAT_FILES))
def test_any_token_soup_in_any_format_is_chunked_without_a_fallback_at_true_positions(tokens, name) -> None:
    data = "".join(tokens).encode()
    fallbacks = _Fallbacks()
    logging.getLogger("codeneedle.indexer.chunker").addHandler(fallbacks)
    try:
        chunks = chunk_source(name, data, language_for_path(name))
    finally:
        logging.getLogger("codeneedle.indexer.chunker").removeHandler(fallbacks)
    assert not fallbacks.messages
    lines = re.sub(rb"\r(?!\n)", b"\n", data)  # a lone CR ends a line too
    for c in chunks:
        assert c.name and 0 <= c.start_byte < c.end_byte <= len(data) and c.start_line <= c.end_line
        assert lines[: c.start_byte].count(b"\n") + 1 == c.start_line
        assert lines[: c.end_byte - 1].count(b"\n") + 1 == c.end_line
    spans = sorted((c.start_byte, c.end_byte) for c in chunks if c.kind != "class")
    if not name.endswith(".ipynb"):  # a notebook's one-line cells share their line's string
        assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False))


SOURCE_LINES = st.lists(st.sampled_from(["def f(x):", "    return x", "", "class C:", "    def m(self):",
                                         "        pass", "x = 1", "%matplotlib inline", "# Title", "text é",
                                         "## Part", '"quoted"', "\\back"]), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=st.lists(st.tuples(st.sampled_from(["code", "markdown", "raw"]), SOURCE_LINES, st.booleans()),
                      max_size=5),
       indent=st.sampled_from([None, 1, 2]))
def test_any_notebook_puts_each_chunk_on_the_line_where_its_first_source_line_is_written(cells, indent) -> None:
    notebook = {"cells": [{"cell_type": kind, "metadata": {}, "outputs": [],
                           "source": [ln + "\n" for ln in lines] if as_list else "\n".join(lines)}
                          for kind, lines, as_list in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    data = json.dumps(notebook, indent=indent, ensure_ascii=False).encode()
    file_lines = data.decode().split("\n")
    sources = ["".join(cell["source"]).split("\n") for cell in notebook["cells"]]
    for c in chunk_source("book.ipynb", data, "jupyter"):
        assert 1 <= c.start_line <= c.end_line <= len(file_lines) and 0 <= c.start_byte < c.end_byte <= len(data)
        # Its lines in its cell hold its text, however the cell's source is written.
        assert 1 <= c.cell_start_line <= c.cell_end_line <= len(sources[c.cell - 1])
        assert c.text.split("\n")[0].strip() == sources[c.cell - 1][c.cell_start_line - 1].strip()
        written = file_lines[c.start_line - 1].strip().rstrip(",").removeprefix('"source": ')
        first = c.text.split("\n", 1)[0].strip()
        if indent is not None:
            assert first in json.loads(written)


@pytest.mark.parametrize("piece", [b'<script a="', b"<script a=", b"<!--", b"<script>", b"</script>"])
def test_a_run_of_unclosed_tags_is_read_in_linear_time(piece: bytes) -> None:
    """Half a megabyte of unclosed tags: each used to be scanned to the end of the file again (55 KB: 6 s)."""
    data = piece * (500_000 // len(piece))
    started = time.monotonic()
    chunks = chunk_source("page.html", data, "html")
    assert time.monotonic() - started < 5
    assert sum(c.end_byte - c.start_byte for c in chunks) <= len(data)


@pytest.mark.parametrize("line", [b"# a" + b" " * 990 + b"b\n", b"# " + b"[" * 995 + b"\n", b"# " + b"![" * 497 + b"\n",
                                  b"[" * 995 + b"\n===\n"])
def test_a_megabyte_of_adversarial_heading_lines_is_read_in_linear_time(line: bytes) -> None:
    """Headings of spaces or brackets up to the 1,000-byte limit: 1 MB of them took 14 s (ATX) and 4 s (links)."""
    data = line * ((1 << 20) // len(line))
    started = time.monotonic()
    chunks = chunk_source("README.md", data, "markdown")
    assert time.monotonic() - started < 2
    assert chunks and chunks[-1].end_line == data.count(b"\n")


def test_a_heading_keeps_the_words_of_its_links_and_badges_and_drops_its_closing_hashes() -> None:
    source = (b"# [![npm](https://img.shields.io/npm/v/x.svg)](https://npm.im/x) x-client\n\nIntro.\n\n"
              b"## See [Foo](https://en.wikipedia.org/wiki/Foo_(bar)) ##\n\nText.\n\n## C# \\# ##\n\nMore.\n")
    assert [c.name for c in chunk_source("README.md", source, "markdown")] == [
        "npm x-client", "See Foo", "C# \\#"]


def test_a_heading_inside_an_html_comment_or_any_fence_is_none() -> None:
    source = (b"# Title\n\nIntro.\n\n<!--\n# Old title\n## Old part\n-->\n<!-- # one line --> text\n\n## Real\n\n"
              b"~~~\n# in tildes\n~~~\n\n````md\n```\n# in a longer fence\n```\n````\n\n## After\n\nEnd.\n")
    chunks = chunk_source("README.md", source, "markdown")
    assert [(c.name, c.start_line, c.end_line) for c in chunks] == [
        ("Title", 1, 9), ("Real", 11, 21), ("After", 23, 25)]


def test_labels_anchors_and_badges_above_the_first_heading_belong_to_its_section() -> None:
    """Alone, `.. _arguments:` was a chunk named `arguments.rst` that came first for the query "Arguments"."""
    rst = b".. _arguments:\n\n.. currentmodule:: click\n   :noindex:\n\nArguments\n=========\n\nTake values.\n"
    assert [(c.name, c.start_line) for c in chunk_source("docs/arguments.rst", rst, "restructuredtext")] == [
        ("Arguments", 1)]
    readme = (b'<p align="center"><img src="logo.png"></p>\n\n[![CI](https://ci/badge.svg)](https://ci)\n\n'
              b"# mylib\n\nDoes things.\n\n## Install\n\npip install mylib\n")
    assert [(c.name, c.start_line) for c in chunk_source("README.md", readme, "markdown")] == [
        ("mylib", 1), ("Install", 9)]
    prose = b"Some words before any heading.\n\n# Title\n\nText.\n"
    assert [(c.name, c.start_line) for c in chunk_source("notes.md", prose, "markdown")] == [
        ("notes.md", 1), ("Title", 3)]


def test_an_nbformat_3_notebook_is_read_by_its_worksheets_cells_and_not_as_text_with_its_outputs() -> None:
    notebook = {"metadata": {"name": "old"}, "nbformat": 3, "nbformat_minor": 0, "worksheets": [{"cells": [
        {"cell_type": "heading", "level": 1, "metadata": {}, "source": ["Sales"]},
        {"cell_type": "markdown", "metadata": {}, "source": ["Loads the data.\n", "\n", "## Loading\n", "From csv."]},
        {"cell_type": "code", "input": ["import csv\n", "\n", "def load(path):\n", "    return list(csv.reader(path))"],
         "language": "python", "metadata": {}, "outputs": [{"output_type": "pyout", "png": "iVBORw0KGgo" * 500}]},
        {"cell_type": "code", "input": "def plot(rows):\n    pass", "language": "python", "metadata": {},
         "outputs": []}]}]}
    data = json.dumps(notebook, indent=1).encode()
    lines = data.decode().split("\n")
    chunks = chunk_source("old.ipynb", data, "jupyter")
    assert [(c.language, c.kind, c.name) for c in chunks] == [
        ("markdown", "text", "Sales"), ("markdown", "text", "Sales"), ("markdown", "text", "Loading"),
        ("python", "block", "old"), ("python", "function", "load"), ("python", "function", "plot")]
    load, plot = chunks[4], chunks[5]
    assert lines[load.start_line - 1].strip() == '"def load(path):\\n",' and load.end_line == load.start_line + 1
    assert lines[plot.start_line - 1].strip().startswith('"input": "def plot(rows)')
    assert [(c.cell, c.cell_start_line) for c in chunks[3:]] == [(3, 1), (3, 3), (4, 1)]  # one worksheet: 1, 2, ...
    assert not any("iVBOR" in c.text for c in chunks)


def test_an_empty_html_comment_closes_on_its_own_line() -> None:
    source = b"# Title\n\nIntro.\n\n<!-->\n\n## Visible\n\nText.\n"
    assert [c.name for c in chunk_source("README.md", source, "markdown")] == ["Title", "Visible"]


def test_a_label_or_anchor_right_above_a_heading_starts_its_section_not_the_one_before() -> None:
    rst = (b"Title\n=====\n\n.. _sub:\n\nSub\n---\n\nText.\n\n.. _docs: https://example.com\n\n"
           b".. _tuple-type:\n\nTuples\n------\n\nMore.\n")
    assert [(c.name, c.start_line, c.end_line) for c in chunk_source("t.rst", rst, "restructuredtext")] == [
        ("Sub", 1, 11), ("Tuples", 13, 18)]  # the title joins Sub (only its label between); a URL target stays
    md = b'# Lib\n\nIntro.\n\n<a id="install"></a>\n\n## Install\n\npip\n\n<a name="use"></a>\n## Use\n\nx\n'
    assert [(c.name, c.start_line, c.end_line) for c in chunk_source("README.md", md, "markdown")] == [
        ("Lib", 1, 3), ("Install", 5, 9), ("Use", 11, 14)]
