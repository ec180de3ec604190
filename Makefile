SHELL := /bin/bash
# Every target creates .venv and installs what it needs on first use, so a fresh
# machine needs nothing but `make demo` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= train,device,demo,dev
# Debian packages the host side needs (installed only when root and missing).
# libportaudio2: sounddevice; pulseaudio*: a real input device without a sound card (demo tests);
# espeak-ng: real speech for tests; chromium: the browser the report page's test opens it in.
# openssh-server / -client: the loopback "device" the remote-device tests reach over SSH.
APT_PACKAGES ?= libsndfile1 libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins espeak-ng chromium openssh-server openssh-client
OUT    ?= build/quickstart
# make demo MODEL=<any registered model> (`edgeaffect models`): its family's pipeline preset, in
# build/<model> unless OUT is given; plain `make demo` is aver-ravdess in $(OUT). PLUGINS: modules
# that register more families (EDGEAFFECT_PLUGINS), e.g. PLUGINS=tests.toy_family MODEL=toy-tones.
MODEL  ?=
PLUGINS ?=
DEMO_MODEL = $(or $(MODEL),aver-ravdess)
DEMO_OUT = $(or $(DEMO_DIR),$(if $(and $(MODEL),$(filter file,$(origin OUT))),build/$(MODEL),$(OUT)))
PLUGIN_ENV = $(if $(PLUGINS),EDGEAFFECT_PLUGINS=$(PLUGINS) PYTHONPATH=$(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH)))
SPEECH ?= build/speechnet
DEPRESSION ?= build/depression
# The latency gate's baseline: the first `make bench` saves each export here; later runs time the
# current export interleaved with it (delete a model's folder to accept a new baseline).
BASELINE ?= build/bench-baseline
REPORT ?= build/report
SOAK_MINUTES ?= 30
comma  := ,
STAMP  := $(BIN)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: help venv apt test test-slow test-rpi demo demo-speech demo-depression demo-wav2vec2 bench bench-distribute bench-peers soak soak-depression roofline report clean

help:
	@echo "make demo       synthetic corpus -> train AVER -> QAT -> TFLite/ONNX -> verify -> table"
	@echo "make demo MODEL=M  the same for any registered model (edgeaffect models), in build/M unless OUT is given;"
	@echo "                PLUGINS=tests.toy_family MODEL=toy-tones: the test-only family"
	@echo "make demo-speech synthetic EmoDB-format corpus -> SpeechNet -> QAT -> TFLite (fused LSTM)/ONNX -> table"
	@echo "make demo-depression synthetic AVEC2013-layout corpus -> spectrotemporal (tiny) -> two stages -> TFLite/ONNX -> table"
	@echo "make demo-wav2vec2 synthetic DAIC-WOZ-layout corpus -> wav2vec 2.0 detector (tiny random backbone) -> two stages -> table"
	@echo "make test       fast test suite (creates .venv on first use)"
	@echo "make test-slow  slow tests (full training to the accuracy bar, benchmarks)"
	@echo "make test-rpi   rpi bundles on an emulated Raspberry Pi 4 / 5 (root; qemu-user; cached user-land)"
	@echo "make bench      benchmark table + budgets (roofline/budgets.toml) + latency gate vs the saved baseline"
	@echo "make bench-distribute  training-step speed of 2 workers (multi-worker, loopback) vs 1 process"
	@echo "make bench-peers  wav2vec 2.0 base: our formats vs PyTorch / ONNX Runtime on one checkpoint (PEERS_SIZE=mid: quicker)"
	@echo "make soak       the demo for SOAK_MINUTES (30) with mic / camera unplugged and back: RSS, results/s, recoveries"
	@echo "make soak-depression  the same for make demo-depression's staged bundle (or: make soak MODEL=M)"
	@echo "make roofline   roofline plots, latency bounds, and our figures beside the papers'"
	@echo "make report     one static page (build/report/index.html) of what the targets above wrote"

apt:
	@sh scripts/apt-deps.sh $(APT_PACKAGES)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory apt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing edgeaffect[$(EXTRAS)] into $(VENV) (first run: a few minutes)"
	@$(BIN)/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	@set -o pipefail 2>/dev/null; $(BIN)/python -m pip install -q -e ".[$(EXTRAS)]" 2>&1 | grep -v "is ignored"; \
	  $(BIN)/python -c "import edgeaffect" && touch $@

venv: $(STAMP)

test: venv
	$(BIN)/python -m pytest -m "not slow and not hardware" -q --durations=25

test-slow: venv
	$(BIN)/python -m pytest -m "slow and not hardware" -q

# Same answers on a Raspberry Pi 4 / 5 (emulated: says nothing about speed). Skips with a
# one-line reason when the machine cannot (not root, no binfmt, no network to the mirror).
test-rpi: venv
	$(BIN)/python -m pytest -q -rs -s tests/test_rpi_emulated.py

# Corpus size, epochs and QAT epochs come from the model's family (Family.pipeline_preset).
demo: venv
	$(PLUGIN_ENV) $(BIN)/edgeaffect pipeline --model $(DEMO_MODEL) --out $(DEMO_OUT)

# Aliases in the folders make bench / roofline / report read.
demo-speech:
	@$(MAKE) --no-print-directory demo MODEL=speechnet-emodb DEMO_DIR=$(SPEECH)

# The tiny variant (a width-0.1 EfficientNet): the paper's B3 trains for days on a CPU.
demo-depression:
	@$(MAKE) --no-print-directory demo MODEL=spectrotemporal-tiny DEMO_DIR=$(DEPRESSION)

# The tiny random backbone: the paper's wav2vec 2.0 base needs a local checkpoint (see its card).
demo-wav2vec2:
	@$(MAKE) --no-print-directory demo MODEL=wav2vec2-tiny

$(DEPRESSION)/export/manifest.json:
	$(MAKE) --no-print-directory demo-depression

$(OUT)/export/manifest.json:
	$(MAKE) --no-print-directory demo

$(SPEECH)/export/manifest.json:
	$(MAKE) --no-print-directory demo-speech

bench: venv $(OUT)/export/manifest.json $(SPEECH)/export/manifest.json $(DEPRESSION)/export/manifest.json
	$(BIN)/edgeaffect bench $(OUT)/export $(SPEECH)/export $(DEPRESSION)/export --budget 3 --budgets roofline/budgets.toml \
	  --baseline $(BASELINE) --save-baseline \
	  --json $(OUT)/bench.json --markdown $(OUT)/bench.md --junit $(OUT)/bench.xml
	$(BIN)/edgeaffect bench-pipeline --work $(OUT) --budget 3
	$(BIN)/edgeaffect bench-recordings $(SPEECH)/export --data $(SPEECH)/corpus --budget 3 --json $(SPEECH)/bench-recordings.json
	$(BIN)/edgeaffect bench-recordings $(DEPRESSION)/export --data $(DEPRESSION)/corpus --budget 3 --json $(DEPRESSION)/bench-recordings.json
	$(BIN)/edgeaffect bench-demo $(OUT)/export --seconds 20 --accuracy-clips 80 --json $(OUT)/bench-demo.json

# Training steps: 2 worker processes (MultiWorkerMirroredStrategy on loopback) vs 1, interleaved rounds.
bench-distribute: venv
	$(BIN)/python -m edgeaffect.train.bench_distribute aver-ravdess --rounds 3 --steps 30

# wav2vec 2.0 (random weights, one checkpoint) through our formats and through transformers' PyTorch
# (fp32, dynamic int8) and ONNX Runtime on torch.onnx.export (fp32, dynamic int8): one table.
# Each export in its own process, resumable; base's ONNX export peaks near 15 GB (tf2onnx).
PEERS_SIZE ?= base
PEERS_THREADS ?= 1
bench-peers: venv
	$(BIN)/python -m edgeaffect.families.wav2vec2.peers build/peers-$(PEERS_SIZE) --size $(PEERS_SIZE) \
	  --threads $(PEERS_THREADS) --rounds 8

# The demo headless for SOAK_MINUTES from a looped video (a model that takes one) and a PulseAudio
# null sink (installed by `make apt`), the microphone unplugged and the camera failing every
# 5 minutes (see README). MODEL=M soaks build/M's export, made by `make demo MODEL=M` when missing.
soak: venv $(DEMO_OUT)/export/manifest.json
	$(BIN)/edgeaffect soak-demo $(DEMO_OUT)/export --minutes $(SOAK_MINUTES) --fault-every 300 --outage 10 \
	  --json $(DEMO_OUT)/soak.json --markdown $(DEMO_OUT)/soak.md

# A staged model: the spectrotemporal bundle of make demo-depression (a score after S segments).
soak-depression:
	@$(MAKE) --no-print-directory soak MODEL=spectrotemporal-tiny DEMO_DIR=$(DEPRESSION)

ifeq ($(filter $(DEMO_OUT),$(OUT) $(SPEECH) $(DEPRESSION)),)
$(DEMO_OUT)/export/manifest.json:
	$(MAKE) --no-print-directory demo
endif

roofline: venv $(OUT)/export/manifest.json $(SPEECH)/export/manifest.json
	@test -f $(OUT)/bench.json || $(MAKE) --no-print-directory bench
	$(BIN)/edgeaffect host-roofs --measure-host
	$(BIN)/edgeaffect calibrate --model aver-ravdess --model speechnet-emodb --json $(OUT)/roofline-calibration.json
	$(BIN)/edgeaffect roofline --model aver-ravdess --model speechnet-emodb --bench $(OUT)/bench.json --out $(OUT)/roofline \
	  --artifact $(OUT)/export/aver-ravdess-tflite-int8.tflite --artifact $(OUT)/export/aver-ravdess-tflite-fp32.tflite \
	  --artifact $(SPEECH)/export/speechnet-emodb-tflite-int8.tflite --artifact $(SPEECH)/export/speechnet-emodb-tflite-fp32.tflite
	$(BIN)/edgeaffect report --bench $(OUT)/bench.json --out $(OUT)/roofline/papers.md

# One page of whatever the targets above wrote (run it after make bench / make roofline): what is
# missing is noted on the page. Opens from disk: $(REPORT)/index.html.
report: venv
	$(BIN)/edgeaffect report $(wildcard $(OUT) $(SPEECH) $(DEPRESSION) build/reproduce) --html $(REPORT)

clean:
	rm -rf build .pytest_cache
