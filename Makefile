# Everything a developer or CI runs. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
QUESTION ?= How do I deploy the assistant to AWS?

.PHONY: setup run ask ingest serve test lint format check site widget sam bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

setup: $(STAMP) ## Create .venv with the package and its tools

ingest: setup ## Index the bundled sample docs (docs/) into the embedded store (.data/)
	$(PY) -m docsrag ingest docs

run: ingest ## Index the sample docs, then serve the API on http://127.0.0.1:8000
	$(PY) -m docsrag serve

ask: ingest ## Index the sample docs and ask one question: make ask QUESTION="..."
	$(PY) -m docsrag ask "$(QUESTION)"

test: setup ## Run the whole test suite
	@test -d site/build/docs/next || echo "make test: site/build is absent, so the tests of the built sample site skip; run 'make site' first (needs npm)"
	$(PY) -m pytest -q

lint: setup ## ruff (lint + format check) and mypy --strict
	$(VENV)/bin/ruff check functions tests bench
	$(VENV)/bin/ruff format --check functions tests bench
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format functions tests bench
	$(VENV)/bin/ruff check --fix functions tests bench

check: lint test ## Everything CI checks in Python

site: ## Build the sample docs with Docusaurus (needs npm) into site/build
	bash infra/scripts/build-sample-site.sh

widget: ## Type-check the Docusaurus ChatKit component (infra/docusaurus) with tsc
	bash infra/scripts/typecheck-widget.sh

sam: ## sam validate --lint, sam build (python3.12 via pyenv), bytecode, package sizes
	bash infra/scripts/sam-check.sh

bench: setup ## Run every benchmark and print its figures
	for script in bench/*.py; do \
	  case $$script in \
	    bench/semantic_embeddings_server.py|bench/rerank_server.py) continue;; \
	    bench/rerank_eval.py) echo "== $$script: needs --rerank-url (see docs/benchmarks.md), skipped"; continue;; \
	    bench/ttft.py|bench/time_budget.py) name=$${script#bench/}; \
	      echo "== $$script"; $(PY) -m bench.$${name%.py} || exit 1; continue;; \
	  esac; \
	  echo "== $$script"; $(PY) $$script || exit 1; \
	done

clean:
	rm -rf .data .aws-sam .pytest_cache .mypy_cache .ruff_cache site/build site/.docusaurus
