"""coin_data.hub.publish against a loopback double of the Hub (tests/hub_server.py).

The client libraries (huggingface_hub, datasets) run unmodified and speak HTTP to the double, so these
tests check what actually goes over the wire: the repo's visibility, the uploaded bytes, that
``datasets.load_dataset("OWNER/NAME")`` reads the rows back, and that the token goes nowhere else.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import huggingface_hub
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError

from coin_data import schema
from coin_data.hub.publish import PublishError, PublishReport, check_folder, publish


def _load_hub_server():
    """Import tests/hub_server.py by path (pytest runs with --import-mode=importlib; tests/ is no package)."""
    if "hub_server" in sys.modules:
        return sys.modules["hub_server"]
    spec = importlib.util.spec_from_file_location("hub_server", Path(__file__).parents[1] / "hub_server.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


HubServer = _load_hub_server().HubServer

# huggingface_hub's LFS upload passes a file object as `data=` to httpx2, which warns; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

REPO = "alice/coin-flan-paraphrased"

SPLITS = {
    "train": {
        schema.ORIGINAL: ["Is this spam? Win a prize now!", "Is this spam? Lunch at noon?"],
        schema.PARAPHRASED: [
            "Does this look like spam? Win a prize now!",
            "Does this look like spam? Lunch at noon?",
        ],
        schema.TARGETS: ["yes", "no"],
    },
    "validation": {
        schema.ORIGINAL: ["Is this spam? Your invoice is attached."],
        schema.PARAPHRASED: ["Would you call this spam? Your invoice is attached."],
        schema.TARGETS: ["no"],
    },
}

# Stands in for the lead's card writer: just the `configs` block the Hub and `datasets` read.
README = textwrap.dedent(
    """\
    ---
    configs:
    - config_name: default
      data_files:
      - split: train
        path: data/train-*
      - split: validation
        path: data/validation-*
    ---
    # coin-flan-paraphrased (test)
    """
)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_hub_client(monkeypatch, tmp_path):
    """No token from the environment or a saved login; LFS instead of Xet (the double has no Xet)."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)


@pytest.fixture
def token() -> str:
    return "hf_coin_test_" + secrets.token_hex(16)


@pytest.fixture
def hub(token):
    with HubServer(token=token) as server:
        yield server


@pytest.fixture
def folder(tmp_path) -> Path:
    """A dataset folder in the Hub layout: two parquet splits and a README.md with YAML `configs`."""
    out = tmp_path / "coin-flan-paraphrased"
    (out / "data").mkdir(parents=True)
    for split, columns in SPLITS.items():
        datasets.Dataset.from_dict(columns).to_parquet(out / "data" / f"{split}-00000-of-00001.parquet")
    (out / "README.md").write_text(README, encoding="utf-8")
    return out


def _snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mtime of every file under ``folder``, hidden ones included."""
    return {
        p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --- uploading ----------------------------------------------------------------------------------


def test_publish_creates_private_repo_with_identical_files(hub, folder, token):
    (folder / ".cache").mkdir()
    (folder / ".cache" / "scratch.txt").write_text("not for the Hub")

    report = publish(folder, REPO, token=token, endpoint=hub.url)

    assert isinstance(report, PublishReport)
    assert report.private is True and hub.repos[REPO].private is True
    assert report.url == f"{hub.url}/datasets/{REPO}"
    assert report.dry_run is False and report.commit == hub.repos[REPO].head
    expected = ["README.md", "data/train-00000-of-00001.parquet", "data/validation-00000-of-00001.parquet"]
    assert [path for path, _ in report.files] == expected
    assert hub.files(REPO) == [".gitattributes", *expected]  # the hidden .cache folder stayed home
    for path, size in report.files:
        assert hub.file_bytes(REPO, path) == (folder / path).read_bytes()
        assert size == (folder / path).stat().st_size
    parquet = [path for path, _ in report.files if path.endswith(".parquet")]
    for info in HfApi(endpoint=hub.url, token=token).get_paths_info(REPO, parquet, repo_type="dataset"):
        assert info.lfs.sha256 == hashlib.sha256((folder / info.path).read_bytes()).hexdigest()  # LFS
    assert hub.unknown_requests() == []
    writes = [r for r in hub.requests if r.route in ("create", "preupload", "lfs-batch", "commit")]
    assert {r.route for r in writes} == {"create", "preupload", "lfs-batch", "commit"}
    assert all(r.token_ok for r in writes)


def test_public_true_creates_public_repo(hub, folder, token):
    report = publish(folder, REPO, public=True, token=token, endpoint=hub.url)

    assert report.private is False and hub.repos[REPO].private is False
    assert HfApi(endpoint=hub.url, token=False).dataset_info(REPO).private is False  # anonymous read works


def test_private_repo_refuses_anonymous_reads(hub, folder, token):
    publish(folder, REPO, token=token, endpoint=hub.url)

    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url, token=False).dataset_info(REPO)
    assert hub.requests[-1].status == 401 and not hub.requests[-1].had_token


def test_token_from_hf_token_env(hub, folder, token, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", token)

    publish(folder, REPO, endpoint=hub.url)

    assert hub.requests and all(r.token_ok for r in hub.requests if r.route != "lfs-upload")


def test_load_dataset_reads_back_published_rows(hub, folder, token, tmp_path):
    publish(folder, REPO, token=token, endpoint=hub.url)
    # datasets and huggingface_hub read HF_ENDPOINT at import: a fresh process sees the double everywhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_"))}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(tmp_path / "hf-home"),
        HF_DATASETS_CACHE=str(tmp_path / "datasets-cache"),
        HF_TOKEN=token,  # the repo is private
    )
    script = (
        "import json, sys, datasets\n"
        "ds = datasets.load_dataset(sys.argv[1])\n"
        "print(json.dumps({split: ds[split].to_dict() for split in ds}))\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", script, REPO],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == SPLITS
    assert hub.unknown_requests() == []
    assert {"resolve", "tree"} <= {r.route for r in hub.requests}


def test_republish_replaces_stale_parquet_shards(hub, folder, token):
    stale = folder / "data" / "train-00001-of-00002.parquet"
    stale.write_bytes((folder / "data" / "train-00000-of-00001.parquet").read_bytes())
    publish(folder, REPO, token=token, endpoint=hub.url)
    assert "data/train-00001-of-00002.parquet" in hub.files(REPO)

    stale.unlink()
    publish(folder, REPO, token=token, endpoint=hub.url)

    assert "data/train-00001-of-00002.parquet" not in hub.files(REPO)
    assert "data/train-00000-of-00001.parquet" in hub.files(REPO)


def test_existing_public_repo_is_not_written_without_public(hub, folder, token):
    publish(folder, REPO, public=True, token=token, endpoint=hub.url)
    head = hub.repos[REPO].head

    with pytest.raises(PublishError, match="already exists and is public"):
        publish(folder, REPO, token=token, endpoint=hub.url)
    assert hub.repos[REPO].head == head


# --- the token stays secret -----------------------------------------------------------------------


def test_token_never_printed_logged_or_stored(hub, folder, token, caplog, capsys):
    for name in (None, "huggingface_hub", "coin_data"):  # huggingface_hub sets its own level: lower it too
        caplog.set_level(logging.DEBUG, logger=name)

    publish(folder, REPO, token=token, endpoint=hub.url)
    with HubServer(token="hf_another_token") as other:  # refuses our token: the error path
        with pytest.raises(PublishError, match="HTTP 401") as refused:
            publish(folder, REPO, token=token, endpoint=other.url)
        other_files = [p.read_bytes() for p in other.root.rglob("*") if p.is_file()]

    out, err = capsys.readouterr()
    assert token not in out and token not in err
    assert token not in caplog.text
    assert all(token not in record.getMessage() for record in caplog.records)
    assert token not in str(refused.value)
    stored = [p.read_bytes() for p in hub.root.rglob("*") if p.is_file()] + other_files
    assert stored and all(token.encode() not in content for content in stored)
    recorded = json.dumps([[r.path, r.headers] for r in hub.requests])
    assert token not in recorded and "authorization" not in recorded.lower()
    assert any(r.had_token for r in hub.requests)


# --- dry run and input errors: nothing is contacted ---------------------------------------------


def test_dry_run_lists_files_and_makes_no_request(hub, folder):
    report = publish(folder, REPO, dry_run=True, endpoint=hub.url)  # no token needed

    assert hub.requests == []
    assert report.dry_run is True and report.commit is None and report.private is True
    assert report.url == f"{hub.url}/datasets/{REPO}"
    assert report.files == [
        (p.relative_to(folder).as_posix(), p.stat().st_size) for p in sorted(folder.rglob("*")) if p.is_file()
    ]
    assert publish(folder, REPO, dry_run=True, public=True, endpoint=hub.url).private is False
    assert hub.requests == []


def _no_readme(folder: Path) -> None:
    (folder / "README.md").unlink()


def _no_front_matter(folder: Path) -> None:
    (folder / "README.md").write_text("# a card without YAML\n")


def _no_data(folder: Path) -> None:
    for path in (folder / "data").glob("*.parquet"):
        path.rename(folder / path.name)  # parquet files, but not under data/


def _broken_parquet(folder: Path) -> None:
    (folder / "data" / "validation-00000-of-00001.parquet").write_bytes(b"PAR1 this is not parquet")


@pytest.mark.parametrize(
    "damage, message",
    [
        (_no_readme, "no README.md"),
        (_no_front_matter, "no YAML front matter"),
        (_no_data, r"no data/\*\.parquet"),
        (_broken_parquet, r"validation-00000-of-00001\.parquet: not a readable parquet file"),
    ],
)
def test_bad_folder_is_named_in_the_error(hub, folder, token, damage, message):
    damage(folder)

    with pytest.raises(PublishError, match=message):
        publish(folder, REPO, token=token, endpoint=hub.url)
    with pytest.raises(PublishError, match=message):
        publish(folder, REPO, dry_run=True, endpoint=hub.url)
    assert hub.requests == []


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(PublishError, match="nowhere: not a folder"):
        check_folder(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "repo_id", ["coin-flan-paraphrased", "a/b/c", "", "alice/", "alice/bad name", "alice/a--b"]
)
def test_bad_repo_id(hub, folder, token, repo_id):
    with pytest.raises(PublishError, match="repo_id must be OWNER/NAME"):
        publish(folder, repo_id, token=token, endpoint=hub.url)
    assert hub.requests == []


def test_no_token_anywhere_is_a_clear_error(hub, folder):
    with pytest.raises(PublishError, match="no Hugging Face token.*HF_TOKEN.*hf auth login"):
        publish(folder, REPO, endpoint=hub.url)
    assert hub.requests == []


# --- the Hub fails ----------------------------------------------------------------------------------


def test_hub_failure_is_one_line_with_the_servers_reason_and_no_token():
    """The formatter publish and --push_to_hub share: status, first line, the server's reason, the hint."""
    from types import SimpleNamespace

    from coin_data.hub.errors import hub_failure

    secret = "hf_secret_token_123456"

    class Refused(Exception):
        response = SimpleNamespace(status_code=401)
        server_message = "Invalid credentials\nin Authorization header"

    err = Refused(f"Client error '401 Unauthorized' for {secret}\nFor more information check: https://x")
    message = hub_failure(err, verb="publish", repo_id="alice/c", url="http://hub/datasets/alice/c",
                          endpoint="http://hub", token=secret, token_sources="HF_TOKEN")
    assert message == ("publishing to http://hub/datasets/alice/c failed (HTTP 401): Client error '401 Unauthorized' "
                       "for ***: Invalid credentials in Authorization header; check that the token (HF_TOKEN) has "
                       "write access")
    down = hub_failure(ConnectionError(""), verb="push", repo_id="a/b", url="u", endpoint="http://hub", token=None,
                       token_sources="HF_TOKEN", alternative="train without --push_to_hub")
    assert down == ("cannot reach the Hub at http://hub to push a/b (ConnectionError): check the connection or "
                    "HF_ENDPOINT, or train without --push_to_hub")


def test_unreachable_hub_is_a_clear_error(folder, token):
    with HubServer(token=token) as gone:
        url = gone.url  # the port is closed once the server has stopped

    with pytest.raises(PublishError, match=f"cannot reach the Hub at {url}"):
        publish(folder, REPO, token=token, endpoint=url)


@pytest.mark.parametrize("route", ["create", "commit"])
def test_server_error_is_clear_and_leaves_folder_untouched(folder, token, route):
    before = _snapshot(folder)

    with HubServer(token=token, errors={route: 500}) as failing:
        with pytest.raises(
            PublishError, match=r"publishing to .*/datasets/alice/coin-flan-paraphrased failed \(HTTP 500\)"
        ):
            publish(folder, REPO, token=token, endpoint=failing.url)
        commits = len(failing.repos[REPO].commits) if REPO in failing.repos else 0

    assert commits <= 1  # at most the repo's initial commit: nothing was committed
    assert _snapshot(folder) == before
