#!/usr/bin/env bash
# Build llama-cpp-python's OpenAI-compatible server into ./.venv-llama (compiles for several minutes).
#
#   bash scripts/setup_llama_server.sh
#   .venv-llama/bin/python -m llama_cpp.server --model <gguf> --host 127.0.0.1 --port 8080 --n_threads 2 --n_threads_batch 2
#
# A separate venv keeps the server's pinned dependencies apart from the project's.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv-llama/bin/python ] || python3 -m venv .venv-llama
if ! .venv-llama/bin/python -c "import llama_cpp.server" >/dev/null 2>&1; then
  CMAKE_ARGS="-DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF" \
    .venv-llama/bin/python -m pip install -q "llama-cpp-python[server]"
fi
echo "llama.cpp server ready: .venv-llama/bin/python -m llama_cpp.server"
