"""``coin-train train --push_to_hub`` against the loopback Hub double (tests/hub_server.py).

huggingface_hub and transformers run unmodified and speak HTTP to the double. Runs that train and upload
go through a fresh process (``HF_ENDPOINT`` is read at import, as in tests/data/test_publish.py); the
checks that fail before training run in-process with the endpoint constant pointed at the double.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
from click.testing import CliRunner

from coin_train.card import split_front_matter
from coin_train.cli import main

TOKEN = "hf_push_test_token_0123456789"
QUIET = ["--use_cpu", "--disable_tqdm", "true", "--report_to", "none", "--dataloader_num_workers", "0"]

# huggingface_hub's LFS upload passes a file object as `data=` to httpx2, which warns; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


def _hub_server_module():
    """tests/hub_server.py by path (tests/ is no package)."""
    if "hub_server" not in sys.modules:
        spec = importlib.util.spec_from_file_location("hub_server", Path(__file__).parents[1] / "hub_server.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["hub_server"]


HubServer = _hub_server_module().HubServer


def train_args(model_dir, dataset_dir, out, *extra) -> list[str]:
    return ["train", "--model", str(model_dir), "--dataset", str(dataset_dir), "--output-dir", str(out), "--lora",
            "--lora_r", "4", "--max-steps", "2", "--per-device-train-batch-size", "4", "--max-length", "64",
            "--save_strategy", "no", *QUIET, *extra]


def train_in_subprocess(hub, args, tmp_path, token=TOKEN) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0",
           "HF_TOKEN_PATH": str(tmp_path / "no-saved-token"), "HF_HOME": str(tmp_path / "hf-home"),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    env.pop("HF_TOKEN", None)
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "coin_train.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600, check=False)


@pytest.fixture
def offline_hub_client(monkeypatch, tmp_path):
    """In-process huggingface_hub with no saved login and LFS uploads (the double has no Xet)."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.delenv("HF_TOKEN", raising=False)


def test_push_uploads_model_card_and_settings_to_a_private_repo(tiny_model_dir, coin_dataset_dir, tmp_path):
    out = tmp_path / "coin-push"
    with HubServer(token=TOKEN) as hub:
        # The Trainer's default hub_strategy (every_save): each checkpoint is pushed in the background too.
        done = train_in_subprocess(hub, train_args(tiny_model_dir, coin_dataset_dir, out, "--push_to_hub",
                                                   "--hub_model_id", "alice/coin-tiny", "--save_strategy", "steps",
                                                   "--save_steps", "1"), tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "pushed" in done.stdout and "alice/coin-tiny" in done.stdout
        repo = hub.repos["alice/coin-tiny"]
        assert repo.repo_type == "model" and repo.private
        assert len(repo.commits) >= 3  # the repo's first commit, at least one checkpoint push, the final push
        files = hub.files("alice/coin-tiny")
        assert not any(name.startswith("checkpoint-") for name in files)
        for name in ("README.md", "coin_config.json", "coin_prompt.json", "adapter_model.safetensors",
                     "adapter_config.json", "tokenizer.json", "trainer_state.json"):
            assert name in files, name
            assert hub.file_bytes("alice/coin-tiny", name) == (out / name).read_bytes(), name
        meta, body = split_front_matter(hub.file_bytes("alice/coin-tiny", "README.md").decode())
        assert meta["library_name"] == "peft" and meta["model_name"] == "coin-tiny" and "## Final losses" in body
        assert "train_loss" in body  # the final card, written after training, is the one uploaded
        for name in files:
            assert TOKEN.encode() not in hub.file_bytes("alice/coin-tiny", name), name
        assert hub.unknown_requests() == []


def test_push_without_hub_model_id_uses_the_output_folder_name(tiny_model_dir, coin_dataset_dir, tmp_path):
    out = tmp_path / "my-run"
    with HubServer(token=TOKEN, user="bob") as hub:
        done = train_in_subprocess(hub, train_args(tiny_model_dir, coin_dataset_dir, out, "--push_to_hub",
                                                   "--hub_private_repo", "false"), tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert not hub.repos["bob/my-run"].private  # asked for public
        assert "README.md" in hub.files("bob/my-run")


def test_failed_upload_after_training_is_one_line_and_keeps_the_model(tiny_model_dir, coin_dataset_dir, tmp_path):
    out = tmp_path / "coin-fail"
    with HubServer(token=TOKEN, errors={"commit": 500}) as hub:
        done = train_in_subprocess(hub, train_args(tiny_model_dir, coin_dataset_dir, out, "--push_to_hub",
                                                   "--hub_model_id", "alice/coin-fail"), tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1, done.stderr[-3000:]
    assert "alice/coin-fail" in error[0] and "HTTP 500" in error[0]
    assert f"the model is saved in {out}: upload it later with `hf upload alice/coin-fail {out}`" in error[0]
    assert (out / "adapter_model.safetensors").is_file() and (out / "README.md").is_file()
    assert TOKEN not in done.stderr + done.stdout


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def invoke(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_unreachable_hub_fails_before_loading_anything(tiny_model_dir, coin_dataset_dir, tmp_path, monkeypatch,
                                                       offline_hub_client):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", endpoint)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    out = tmp_path / "out"
    result = invoke(train_args(tiny_model_dir, coin_dataset_dir, out, "--push_to_hub", "--hub_model_id", "alice/x"))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: cannot reach the Hub at {endpoint} to push alice/x")
    assert lines[0].endswith("check the connection or HF_ENDPOINT, or train without --push_to_hub")
    assert not out.exists()  # nothing trained, nothing written


def test_no_token_is_one_line(tiny_model_dir, coin_dataset_dir, tmp_path, offline_hub_client):
    result = invoke(train_args(tiny_model_dir, coin_dataset_dir, tmp_path / "out", "--push_to_hub"))
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: --push_to_hub needs a Hugging Face token with write access: set "
                                     "HF_TOKEN, run `hf auth login`, or pass --hub_token")


def test_existing_public_repo_is_not_written_unless_asked(tiny_model_dir, coin_dataset_dir, tmp_path, monkeypatch,
                                                          offline_hub_client):
    with HubServer(token=TOKEN) as hub:
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
        huggingface_hub.HfApi(endpoint=hub.url, token=TOKEN).create_repo("alice/open", private=False)
        result = invoke(train_args(tiny_model_dir, coin_dataset_dir, tmp_path / "out", "--push_to_hub",
                                   "--hub_model_id", "alice/open", "--hub_token", TOKEN))
        assert result.exit_code == 1
        assert "already exists and is public; nothing was trained or uploaded" in result.output
        assert "--hub_private_repo false" in result.output and TOKEN not in result.output
        assert hub.files("alice/open") == [".gitattributes"]


def test_wrong_token_is_refused_with_a_hint(tiny_model_dir, coin_dataset_dir, tmp_path, monkeypatch,
                                           offline_hub_client):
    with HubServer(token=TOKEN) as hub:
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
        result = invoke(train_args(tiny_model_dir, coin_dataset_dir, tmp_path / "out", "--push_to_hub",
                                   "--hub_model_id", "alice/x", "--hub_token", "hf_wrong_token_abcdefgh"))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "HTTP 401" in lines[0] and "has write access" in lines[0]
    assert "hf_wrong_token_abcdefgh" not in result.output


def test_invalid_hub_model_id_is_named(tiny_model_dir, coin_dataset_dir, tmp_path, offline_hub_client):
    result = invoke(train_args(tiny_model_dir, coin_dataset_dir, tmp_path / "out", "--push_to_hub",
                               "--hub_model_id", "alice/bad--name", "--hub_token", TOKEN))
    assert result.exit_code == 1 and result.output.startswith("Error: --hub_model_id: repo_id must be OWNER/NAME")
