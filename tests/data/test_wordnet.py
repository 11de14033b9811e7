"""Tests for coin_data.text.wordnet: building an nltk WordNet root from Debian files, and the missing-data error."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nltk
import pytest

from coin_data.text import wordnet as wnmod
from coin_data.text.wordnet import (
    DEBIAN_LEXNAMES_MAN_PAGE,
    DEBIAN_WORDNET_DIR,
    LEXICOGRAPHER_FILES,
    WORDNET_SOURCE_FILES,
    WordNetMissingError,
    build_wordnet_root,
    default_data_root,
    lexnames_text,
    setup_wordnet,
)


@pytest.fixture
def debian_copy(tmp_path: Path) -> Path:
    """A private copy of the Debian WordNet files (so a test can delete or break them)."""
    if not (DEBIAN_WORDNET_DIR / "data.noun").is_file():
        pytest.skip(f"needs the Debian WordNet files in {DEBIAN_WORDNET_DIR} (apt-get install wordnet-base wordnet-sense-index)")
    source = tmp_path / "debian-wordnet"
    source.mkdir()
    for name in WORDNET_SOURCE_FILES:
        shutil.copyfile(DEBIAN_WORDNET_DIR / name, source / name)
    return source


@pytest.fixture
def isolated_nltk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """nltk sees only an empty data root, and this module forgets any earlier success."""
    empty = tmp_path / "empty-nltk-data"
    empty.mkdir()
    monkeypatch.setattr(nltk.data, "path", [str(empty)])
    monkeypatch.setattr(wnmod, "_ready_path", None)
    monkeypatch.delenv("COIN_NLTK_DATA", raising=False)
    return empty


def test_lexnames_table_has_45_wordnet_files_in_order():
    lines = lexnames_text(None).splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3"
    assert lines[3] == "03\tnoun.Tops\t1"
    assert lines[29] == "29\tverb.body\t2"
    assert lines[44] == "44\tadj.ppl\t3"
    assert {line.split("\t")[2] for line in lines} == {"1", "2", "3", "4"}


def test_lexnames_from_man_page_matches_table_and_bad_page_falls_back(tmp_path: Path):
    table = "".join(f".TS\n{i:02d}\t{name}\tsome description  \n" for i, name in enumerate(LEXICOGRAPHER_FILES))
    page = tmp_path / "lexnames.5WN.gz"
    page.write_bytes(gzip.compress(table.replace("noun.person", "noun.person  ").encode()))
    assert lexnames_text(page) == lexnames_text(None)
    if DEBIAN_LEXNAMES_MAN_PAGE.is_file():  # the real page, when installed, agrees with the table
        assert lexnames_text(DEBIAN_LEXNAMES_MAN_PAGE) == lexnames_text(None)
    garbled = tmp_path / "garbled.5WN"
    garbled.write_text("00\tadj.all\t3\n01\tnot-a-lexname\t9\n")
    assert lexnames_text(garbled) == lexnames_text(None)
    assert lexnames_text(tmp_path / "absent.gz") == lexnames_text(None)


def test_default_data_root_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("COIN_NLTK_DATA", str(tmp_path / "nd"))
    assert default_data_root() == tmp_path / "nd"
    monkeypatch.delenv("COIN_NLTK_DATA")
    assert default_data_root() == Path("~/.cache/coin-toolkit/nltk_data").expanduser()


def test_setup_builds_root_from_debian_copy(isolated_nltk: Path, debian_copy: Path, tmp_path: Path):
    root = tmp_path / "coin-nltk-data"
    corpus = setup_wordnet(source_dir=debian_copy, data_root=root, man_page=None)

    assert corpus == root / "corpora" / "wordnet"
    for name in (*WORDNET_SOURCE_FILES, "lexnames"):
        assert (corpus / name).is_file() and not (corpus / name).is_symlink(), name
    assert (corpus / "data.noun").stat().st_size == (debian_copy / "data.noun").stat().st_size
    assert (corpus / "lexnames").read_text().splitlines()[18] == "18\tnoun.person\t1"
    assert nltk.data.path == [str(isolated_nltk), str(root)]
    # nltk's own resolver accepts the copy (it rejects symlinks that leave a data root).
    assert Path(nltk.data.find("corpora/wordnet").path) == corpus
    assert not list((root / "corpora").glob(".wordnet-building-*"))

    # Once ready, calls are free and ignore their arguments; a fresh process reuses the built root
    # even when the Debian files are gone.
    assert setup_wordnet(source_dir=tmp_path / "nowhere") == corpus
    shutil.rmtree(debian_copy)
    wnmod._ready_path = None
    assert setup_wordnet(source_dir=debian_copy, data_root=root) == corpus


def test_ensure_wordnet_uses_env_root(isolated_nltk: Path, debian_copy: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("COIN_NLTK_DATA", str(tmp_path / "from-env"))
    assert wnmod.ensure_wordnet(source_dir=debian_copy) is None
    assert (tmp_path / "from-env" / "corpora" / "wordnet" / "lexnames").is_file()
    assert str(tmp_path / "from-env") in nltk.data.path


def test_interrupted_build_leaves_nothing_behind(debian_copy: Path, tmp_path: Path, monkeypatch):
    root = tmp_path / "root"
    real_copy, copied = shutil.copyfile, []

    def copy_then_die(src, dst, *args, **kwargs):
        if len(copied) == 5:
            raise OSError("disk full (simulated)")
        copied.append(dst)
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copyfile", copy_then_die)
    with pytest.raises(OSError, match="simulated"):
        build_wordnet_root(debian_copy, root, None)
    assert len(copied) == 5
    assert not (root / "corpora" / "wordnet").exists()
    assert list((root / "corpora").iterdir()) == []


def test_incomplete_corpus_in_the_way_is_reported_not_deleted(debian_copy: Path, tmp_path: Path):
    corpus = tmp_path / "root" / "corpora" / "wordnet"
    corpus.mkdir(parents=True)
    (corpus / "data.noun").write_text("mine")
    with pytest.raises(WordNetMissingError, match="incomplete"):
        build_wordnet_root(debian_copy, tmp_path / "root", None)
    assert (corpus / "data.noun").read_text() == "mine"


def test_missing_source_files_are_named(tmp_path: Path):
    source = tmp_path / "partial"
    source.mkdir()
    (source / "data.noun").write_text("")
    with pytest.raises(WordNetMissingError, match=r"lacks WordNet files: adj\.exc"):
        build_wordnet_root(source, tmp_path / "root", None)


def test_clear_error_when_no_wordnet_anywhere(isolated_nltk: Path, tmp_path: Path):
    no_debian = tmp_path / "no-debian"
    no_debian.mkdir()
    root = tmp_path / "root"
    with pytest.raises(WordNetMissingError) as caught:
        wnmod.ensure_wordnet(source_dir=no_debian, data_root=root)
    message = str(caught.value)
    assert "python -m nltk.downloader wordnet" in message
    assert "apt-get install wordnet-base wordnet-sense-index" in message
    assert "NLTK_DATA" in message
    assert str(no_debian) in message and str(isolated_nltk) in message
    assert not root.exists()
    assert wnmod._ready_path is None
