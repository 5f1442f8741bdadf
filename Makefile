# Needle: `make search REPO=path Q="..."` sets up and searches; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
REPO   ?= .
Q      ?= parse a config file
STAMP  := $(VENV)/.installed
# Where pip finds torch. Empty: the configured index. On plain PyPI, Linux wheels of torch bundle CUDA
# (gigabytes): use the CPU wheel index, `make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu`.
TORCH_INDEX ?=

.PHONY: setup search index test test-fast lint bench e2e-vscode vscode dist clean

# torch first, pinned to the CPU wheel: an unpinned torch pulled in by a dependency would be a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -e '.[dev,train,mcp,ray]'
	touch $(STAMP)

setup: $(STAMP)

index: setup
	$(BIN)/needle index $(REPO)

search: setup
	$(BIN)/needle index $(REPO)
	$(BIN)/needle search --path $(REPO) "$(Q)"

lint: setup
	$(BIN)/ruff check --no-cache codeneedle tests bench scripts

# The extension's pure logic (node's test runner) first, then the Python suite against the real stack, in two
# processes: most tests wait on a subprocess, a server or an editor, so two share two cores well (one file per
# process at a time: module fixtures are built once).
test: setup lint
	$(MAKE) -C editors/vscode test
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=25

# The inner loop: every test not marked slow (real editors, LSP and MCP servers, subprocess CLI runs, training,
# Ray, SIGKILL and random watcher runs are); under a minute on 2 cores. CI runs `make test`, all of them.
test-fast: setup
	$(BIN)/pytest -q -p no:cacheprovider -m "not slow"

bench: setup
	$(BIN)/python bench/index_speed.py

vscode:
	$(MAKE) -C editors/vscode package

# What a user installs: dist/codeneedle-<version>-py3-none-any.whl (CLI, servers, the shipped model) and
# dist/needle.vsix (the VS Code extension). Install: see README "Install".
dist: setup
	rm -rf dist build
	$(BIN)/pip wheel -q --no-deps --wheel-dir dist .
	$(MAKE) -C editors/vscode package
	cp editors/vscode/needle.vsix dist/
	@ls -l dist

e2e-vscode: setup
	$(MAKE) -C editors/vscode e2e

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache dist build
