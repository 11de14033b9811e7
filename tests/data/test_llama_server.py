"""End to end against a real OpenAI-compatible server: llama-cpp-python serving the bundled SmolLM2 GGUF.

Marked ``llama_server`` (deselected by default; ``pytest -m llama_server``). ``.ci/run`` installs
llama-cpp-python when it has the time (it compiles for several minutes)::

    CMAKE_ARGS="-DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF" \\
        pip install "llama-cpp-python[server]"

The server runs from this interpreter when it can import ``llama_cpp``, else from the interpreter named
by ``COIN_LLAMA_PYTHON`` (a separate virtual environment keeps the server's dependencies apart); the test
skips, saying so, only when neither has it.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.llama_server

TASKS = "sentiment"
TEMPLATES = 6


def llama_python() -> str | None:
    """An interpreter that can import llama_cpp, or ``None``."""
    if importlib.util.find_spec("llama_cpp") is not None:
        return sys.executable
    other = os.environ.get("COIN_LLAMA_PYTHON")
    if other and subprocess.run([other, "-c", "import llama_cpp.server"], capture_output=True).returncode == 0:
        return other
    return None


@pytest.fixture(scope="module")
def llama_server(load_benchmark):
    python = llama_python()
    if python is None:
        pytest.skip("llama_cpp is not importable (pip install 'llama-cpp-python[server]', or set COIN_LLAMA_PYTHON "
                    "to an interpreter that has it)")
    with load_benchmark("llama_server").serve_smollm2(python, threads=2) as server:
        yield server.url


def coin_data(*args: str, env: dict) -> subprocess.CompletedProcess:
    exe = shutil.which("coin-data", path=str(Path(sys.executable).parent)) or "coin-data"
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=1800)


def test_build_against_llama_cpp_server(llama_server, tmp_path):
    out, cache = tmp_path / "coin-flan-paraphrased", tmp_path / "cache"
    env = {**os.environ, "OPENAI_API_KEY": "sk-llama-SECRET-5d1e"}
    args = ["build", "--tasks", TASKS, "--paraphraser", "openai:smollm2", "--base-url", llama_server,
            "--cache-dir", str(cache), "--concurrency", "1", "--timeout", "300", "--max-retries", "2",
            "--temperature", "0.7", "-k", "2", "--out", str(out)]
    started = time.monotonic()
    first = coin_data(*args, env=env)
    seconds = time.monotonic() - started
    assert first.returncode == 0, first.stdout + first.stderr

    import datasets
    import pyarrow.parquet as pq

    candidates = datasets.load_dataset(str(out), "templates")["train"]
    # A 135M model keeps few paraphrases; datasets cannot read a 0-row parquet file, so count with pyarrow.
    rows = {split: pq.read_metadata(out / "data" / f"{split}-00000-of-00001.parquet").num_rows
            for split in ("train", "validation")}
    # Every template is paraphrased (has candidates with verdicts) or failed with its reason: none lost.
    assert set(zip(candidates["task"], candidates["template_id"])) == {("sentiment", f"t{i}") for i in range(TEMPLATES)}
    assert all(verdict and reason is not None for verdict, reason in zip(candidates["verdict"], candidates["reason"]))
    if rows["train"]:
        dataset = datasets.load_dataset(str(out))
        assert set(dataset["train"]["paraphrase_source"]) == {"openai:smollm2"}
    card = (out / "README.md").read_text()
    assert "openai:smollm2" in card and "API requests" in card
    kept = sum(v == "kept" for v in candidates["verdict"])
    print(json.dumps({"llama_server_build_seconds": round(seconds, 1), "templates": TEMPLATES,
                      "candidates": len(candidates), "kept": kept, "rows": rows,
                      "summary": first.stdout.strip().splitlines()[-12:]}, indent=1))

    # A rerun is answered from the cache: no calls.
    again = coin_data(*args, "--overwrite", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(r"api usage\s+0 requests", again.stdout), again.stdout
    secret = env["OPENAI_API_KEY"].encode()
    assert not [p for folder in (out, cache) for p in folder.rglob("*") if p.is_file() and secret in p.read_bytes()]
    assert secret.decode() not in first.stdout + first.stderr + again.stdout + again.stderr
