"""Make ``nltk.corpus.wordnet`` usable, offline when possible.

The ``rules`` paraphraser needs WordNet. There are three ways to get it, tried in this order:

1. nltk already finds it on its data path (``python -m nltk.downloader wordnet`` or ``NLTK_DATA``).
2. The Debian/Ubuntu packages ``wordnet-base`` and ``wordnet-sense-index`` are installed: their files in
   ``/usr/share/wordnet`` are copied into a user data root (``~/.cache/coin-toolkit/nltk_data``, or
   ``$COIN_NLTK_DATA``) as ``corpora/wordnet/`` plus a generated ``lexnames`` file, and that root is
   appended to ``nltk.data.path``. Copying is needed because nltk only reads files under its data roots
   and refuses symlinks that point outside them. The copy is built in a temporary folder and renamed
   into place, so a killed run never leaves a half-built corpus where nltk looks.
3. Otherwise :class:`WordNetMissingError` says what to install.

Example:
    >>> ensure_wordnet()                         # doctest: +SKIP
    >>> from nltk.corpus import wordnet as wn    # doctest: +SKIP
    >>> wn.synsets("review")[0].name()           # doctest: +SKIP
    'review.n.01'
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import nltk

DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")
DEBIAN_LEXNAMES_MAN_PAGE = Path("/usr/share/man/man5/lexnames.5WN.gz")
DATA_ROOT_ENV = "COIN_NLTK_DATA"
DEFAULT_DATA_ROOT = Path("~/.cache/coin-toolkit/nltk_data")

# The files nltk's WordNetCorpusReader opens, except ``lexnames`` which Debian does not ship.
WORDNET_SOURCE_FILES = (
    "adj.exc",
    "adv.exc",
    "noun.exc",
    "verb.exc",
    "data.adj",
    "data.adv",
    "data.noun",
    "data.verb",
    "index.adj",
    "index.adv",
    "index.noun",
    "index.verb",
    "index.sense",
    "cntlist.rev",
)

# The 45 WordNet 3.0 lexicographer files, in file-number order (00 .. 44). Used when the Debian man
# page that lists them is not installed.
LEXICOGRAPHER_FILES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change",
    "verb.cognition", "verb.communication", "verb.competition", "verb.consumption", "verb.contact",
    "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social",
    "verb.stative", "verb.weather", "adj.ppl",
)  # fmt: skip

_POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
_TEMP_PREFIX = ".wordnet-building-"
_STALE_TEMP_SECONDS = 3600

# Where WordNet was found or built in this process; set once it is known to work, so that repeated
# calls cost nothing.
_ready_path: Path | None = None


class WordNetMissingError(RuntimeError):
    """WordNet is neither on nltk's data path nor installable from local Debian files."""


def default_data_root() -> Path:
    """The folder that receives the copied corpus: ``$COIN_NLTK_DATA`` or ``~/.cache/coin-toolkit/nltk_data``.

    Returns:
        An absolute path (it may not exist yet).

    Example:
        >>> import os; os.environ["COIN_NLTK_DATA"] = "/tmp/nd"
        >>> str(default_data_root())
        '/tmp/nd'
        >>> del os.environ["COIN_NLTK_DATA"]
    """
    configured = os.environ.get(DATA_ROOT_ENV)
    return Path(configured).expanduser() if configured else DEFAULT_DATA_ROOT.expanduser()


def lexnames_text(man_page: str | Path | None = DEBIAN_LEXNAMES_MAN_PAGE) -> str:
    """The content of WordNet's ``lexnames`` file: ``NN<TAB>name<TAB>pos-number`` per line.

    The names come from the Debian man page ``lexnames.5WN`` when it is installed and well formed,
    otherwise from the built-in table (both give the same 45 lines for WordNet 3.0).

    Args:
        man_page: path of ``lexnames.5WN`` (gzipped or plain); ``None`` uses the built-in table.

    Returns:
        45 newline-terminated lines.

    Example:
        >>> lexnames_text(None).splitlines()[3]
        '03\\tnoun.Tops\\t1'
    """
    names = _lexnames_from_man_page(Path(man_page)) if man_page else None
    names = names or LEXICOGRAPHER_FILES
    return "".join(f"{number:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n" for number, name in enumerate(names))


def _lexnames_from_man_page(man_page: Path) -> tuple[str, ...] | None:
    """Lexicographer file names from the man page's table, or ``None`` when absent or unexpected."""
    try:
        raw = gzip.decompress(man_page.read_bytes()) if man_page.suffix == ".gz" else man_page.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    names: dict[int, str] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        number, _, rest = line.partition("\t")
        if len(number) == 2 and number.isdigit() and rest.strip():
            names[int(number)] = rest.split("\t")[0].strip()
    ordered = tuple(names.get(i, "") for i in range(len(LEXICOGRAPHER_FILES)))
    # Trust the page only if it has exactly the expected shape; a garbled page must not produce a
    # lexnames file that nltk would read wrongly.
    if len(names) != len(LEXICOGRAPHER_FILES) or any(n.split(".")[0] not in _POS_NUMBER for n in ordered):
        return None
    return ordered


def find_nltk_wordnet() -> Path | None:
    """Where nltk's own data path holds WordNet (folder or zip), or ``None``.

    Returns:
        The folder (or zip file) nltk would load, else ``None``.

    Example:
        >>> find_nltk_wordnet() is None or find_nltk_wordnet().exists()   # doctest: +SKIP
        True
    """
    for resource in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):
        try:
            pointer = nltk.data.find(resource)
        except LookupError:
            continue
        # FileSystemPathPointer has .path; ZipFilePathPointer has .zipfile (a ZipFile).
        location = getattr(pointer, "path", None) or getattr(getattr(pointer, "zipfile", None), "filename", "")
        return Path(location)
    return None


def _is_complete(corpus_dir: Path) -> bool:
    return all((corpus_dir / name).is_file() for name in (*WORDNET_SOURCE_FILES, "lexnames"))


def _remove_stale_temp_dirs(parent: Path) -> None:
    """Delete build folders left by killed runs (old enough that no live run still writes them)."""
    for leftover in parent.glob(_TEMP_PREFIX + "*"):
        try:
            if time.time() - leftover.stat().st_mtime > _STALE_TEMP_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass


def build_wordnet_root(
    source_dir: str | Path = DEBIAN_WORDNET_DIR,
    data_root: str | Path | None = None,
    man_page: str | Path | None = DEBIAN_LEXNAMES_MAN_PAGE,
) -> Path:
    """Copy Debian's WordNet files into ``<data_root>/corpora/wordnet`` (atomically), unless already there.

    Args:
        source_dir: folder with the Debian WordNet database files.
        data_root: nltk data root to fill; ``None`` means :func:`default_data_root`.
        man_page: ``lexnames.5WN`` to derive ``lexnames`` from (``None``: built-in table).

    Returns:
        The corpus folder ``<data_root>/corpora/wordnet``.

    Raises:
        WordNetMissingError: a source file is missing, or an incomplete corpus folder is in the way.

    Example:
        >>> build_wordnet_root("/usr/share/wordnet", "/tmp/nd")        # doctest: +SKIP
        PosixPath('/tmp/nd/corpora/wordnet')
    """
    source = Path(source_dir)
    target = Path(data_root).expanduser() if data_root else default_data_root()
    target = target / "corpora" / "wordnet"
    if _is_complete(target):
        return target
    if target.exists():
        # Not built by us (our builds appear complete or not at all): do not delete someone's files.
        raise WordNetMissingError(f"{target} exists but is incomplete; remove it and run again")
    missing = [name for name in WORDNET_SOURCE_FILES if not (source / name).is_file()]
    if missing:
        raise WordNetMissingError(f"{source} lacks WordNet files: {', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_dirs(target.parent)
    building = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=target.parent))
    try:
        for name in WORDNET_SOURCE_FILES:
            shutil.copyfile(source / name, building / name)
        (building / "lexnames").write_text(lexnames_text(man_page), encoding="utf-8")
        try:
            os.rename(building, target)
        except OSError:
            # Another process renamed its own build into place first; that one is as good as ours.
            if not _is_complete(target):
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def _check_lookup(corpus_dir: Path) -> None:
    """Prove that ``nltk.corpus.wordnet`` answers a lookup.

    Loading the shared lazy reader is the real test (nltk resolves the data path itself, symlink rules
    included) and is the load the caller would pay anyway. A reader that is already loaded works by
    definition, so there is nothing left to check.
    """
    from nltk.corpus.util import LazyCorpusLoader

    shared = nltk.corpus.wordnet
    if not isinstance(shared, LazyCorpusLoader):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": irrelevant here
        try:
            found = shared.synsets("dog")
        except (LookupError, OSError, ValueError, AssertionError) as err:
            raise WordNetMissingError(f"WordNet at {corpus_dir} cannot be read by nltk: {err}") from err
    if not found:
        raise WordNetMissingError(f"WordNet at {corpus_dir} loads but finds no synsets for 'dog'")


def _missing_message(source: Path, root: Path) -> str:
    return (
        "WordNet for nltk was not found. Do one of:\n"
        "  - with internet: python -m nltk.downloader wordnet\n"
        "  - on Debian/Ubuntu: apt-get install wordnet-base wordnet-sense-index, then run again "
        f"(files in {DEBIAN_WORDNET_DIR} are copied to {root}/corpora/wordnet)\n"
        "  - or set NLTK_DATA to a folder that holds corpora/wordnet\n"
        f"Searched nltk.data.path={list(nltk.data.path)!r} and Debian files in {source}."
    )


def setup_wordnet(
    source_dir: str | Path | None = None,
    data_root: str | Path | None = None,
    man_page: str | Path | None = DEBIAN_LEXNAMES_MAN_PAGE,
) -> Path:
    """Make WordNet usable and return where it lives (the function behind ``coin-data setup-wordnet``).

    Args:
        source_dir: Debian WordNet folder (default ``/usr/share/wordnet``).
        data_root: nltk data root for the copy (default ``$COIN_NLTK_DATA`` or ``~/.cache/coin-toolkit/nltk_data``).
        man_page: ``lexnames.5WN`` to derive ``lexnames`` from (``None``: built-in table).

    Returns:
        The WordNet folder (or zip) nltk reads.

    Raises:
        WordNetMissingError: neither nltk's data path nor the Debian files provide WordNet; the message
            lists the commands that fix it.

    Example:
        >>> setup_wordnet()                                 # doctest: +SKIP
        PosixPath('/root/.cache/coin-toolkit/nltk_data/corpora/wordnet')
    """
    global _ready_path
    if _ready_path is not None:
        return _ready_path
    found = find_nltk_wordnet()
    if found is None:
        source = Path(source_dir) if source_dir else DEBIAN_WORDNET_DIR
        root = Path(data_root).expanduser() if data_root else default_data_root()
        if not _is_complete(root / "corpora" / "wordnet") and not (source / "data.noun").is_file():
            raise WordNetMissingError(_missing_message(source, root))
        found = build_wordnet_root(source, root, man_page)
        if str(root) not in nltk.data.path:
            nltk.data.path.append(str(root))
    _check_lookup(found)
    _ready_path = found
    return found


def ensure_wordnet(
    source_dir: str | Path | None = None,
    data_root: str | Path | None = None,
    man_page: str | Path | None = DEBIAN_LEXNAMES_MAN_PAGE,
) -> None:
    """Make ``nltk.corpus.wordnet`` usable; free after the first successful call.

    Args:
        source_dir, data_root, man_page: as for :func:`setup_wordnet`.

    Raises:
        WordNetMissingError: no WordNet anywhere; the message says how to install it.

    Example:
        >>> ensure_wordnet()                                # doctest: +SKIP
        >>> import nltk; nltk.corpus.wordnet.synsets("dog")[0].name()   # doctest: +SKIP
        'dog.n.01'
    """
    setup_wordnet(source_dir, data_root, man_page)
