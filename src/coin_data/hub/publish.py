"""Upload a dataset folder in the Hub layout to the Hugging Face Hub: private and checked first.

The folder is what ``coin-data build`` writes (see :mod:`coin_data.hub.layout`)::

    coin-flan-paraphrased/
      README.md                                  dataset card; YAML front matter with `configs`
      data/train-00000-of-00001.parquet
      data/validation-00000-of-00001.parquet
      templates/...parquet                       optional further configs

:func:`publish` validates it, then creates the dataset repo (private unless asked otherwise) and uploads
every file in one commit with ``huggingface_hub``. ``dry_run=True`` lists what would be uploaded and
contacts nothing. The token comes from the argument, else from ``HF_TOKEN`` or the saved login
(``hf auth login``), exactly as ``huggingface_hub`` resolves it; it is never printed, logged or put in
an error message. ``endpoint`` (or ``HF_ENDPOINT``) selects another Hub server.

Example:
    >>> report = publish("coin-flan-paraphrased", "alice/coin-flan-paraphrased", dry_run=True)  # doctest: +SKIP
    >>> report.private, report.commit  # doctest: +SKIP
    (True, None)
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from coin_data.hub.errors import hub_errors, hub_failure, token_leaks  # noqa: F401 (hub_errors, token_leaks: re-exported)

logger = logging.getLogger(__name__)

DEFAULT_COMMIT_MESSAGE = "Upload CoIN dataset with coin-toolkit"

# Hidden files and folders (.git, .cache, a build's .partial-* folder) are never uploaded. The same
# rule is applied to the dry-run listing and, as fnmatch patterns, to upload_folder.
_IGNORE_PATTERNS = (".*", "*/.*")

# Parquet files already in the repo but not in the folder are deleted in the same commit: otherwise a
# re-publish with fewer shards would leave stale shards that `configs` globs still pick up.
_REPLACE_PATTERNS = ("*.parquet",)

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


class PublishError(ValueError):
    """The folder cannot be published as is, or the Hub refused or failed the upload."""


@dataclass
class PublishReport:
    """What :func:`publish` uploaded (or, for a dry run, would upload).

    Attributes:
        repo_id: ``OWNER/NAME`` of the dataset repo.
        url: web address of the repo, e.g. ``https://huggingface.co/datasets/OWNER/NAME``.
        private: visibility of the repo (for a dry run: the visibility it would be created with).
        files: ``(path in repo, size in bytes)`` of every uploaded file, sorted by path.
        dry_run: True when nothing was contacted.
        commit: id of the commit that holds the upload; None for a dry run.
    """

    repo_id: str
    url: str
    private: bool
    files: list[tuple[str, int]] = field(default_factory=list)
    dry_run: bool = False
    commit: str | None = None


def publish(
    folder: str | Path,
    repo_id: str,
    *,
    public: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    commit_message: str | None = None,
) -> PublishReport:
    """Upload a dataset folder in the Hub layout to a dataset repo on the Hub.

    Steps: validate the folder (README.md with YAML front matter, at least one ``data/*.parquet``,
    every parquet file readable) and ``repo_id``; then ``create_repo(private=not public,
    exist_ok=True)`` and ``upload_folder`` in one commit. An existing *public* repo is not written to
    unless ``public=True``, so a private-by-default upload never lands somewhere public. An existing
    private repo stays private even with ``public=True`` (a warning says so). Parquet files in the repo
    that the folder lacks are deleted in the same commit, so a re-publish with fewer shards leaves no
    stale data behind. Hidden files and folders (``.cache``, ``.git``...) are not uploaded. The local
    folder is only read.

    Args:
        folder: the dataset folder (as written by ``coin-data build``).
        repo_id: the dataset repo, ``OWNER/NAME`` (a user or an organization, and a name).
        public: create the repo public; default private.
        dry_run: only validate and list what would be uploaded; no network access, no token needed.
        token: a Hugging Face token with write access; default ``HF_TOKEN``, else the saved login.
        endpoint: Hub address; default ``HF_ENDPOINT``, else ``https://huggingface.co``.
        commit_message: message of the upload commit.

    Returns:
        A :class:`PublishReport`: repo, url, visibility, files with sizes, and the commit id.

    Raises:
        PublishError: the folder or ``repo_id`` is invalid, no token is available, an existing repo is
            public while ``public`` is false, or the Hub refused or failed a request. The message says
            which; it never contains the token.

    Example:
        >>> publish("coin-flan-paraphrased", "alice/coin-flan-paraphrased", dry_run=True).files  # doctest: +SKIP
        [('README.md', 2311), ('data/train-00000-of-00001.parquet', 41022), ...]
    """
    folder = Path(folder)
    files = check_folder(folder)
    check_repo_id(repo_id)

    if dry_run:
        from huggingface_hub import constants

        url = _repo_url(endpoint or constants.ENDPOINT, repo_id)
        return PublishReport(repo_id, url, private=not public, files=files, dry_run=True)

    from huggingface_hub import HfApi, get_token

    token = token or get_token()
    if not token:
        raise PublishError(
            "no Hugging Face token: pass token=..., set HF_TOKEN, or run `hf auth login` "
            "(the token needs write access to the repo's owner)"
        )
    from coin_data import __version__

    api = HfApi(endpoint=endpoint, token=token, library_name="coin-toolkit", library_version=__version__)
    url = _repo_url(api.endpoint, repo_id)
    try:
        private = _ensure_repo(api, repo_id, public=public, url=url)
        logger.info("uploading %d file(s) to %s (%s)", len(files), url, "private" if private else "public")
        info = api.upload_folder(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=folder,
            commit_message=commit_message or DEFAULT_COMMIT_MESSAGE,
            ignore_patterns=list(_IGNORE_PATTERNS),  # a copy: upload_folder extends the list it gets
            delete_patterns=list(_REPLACE_PATTERNS),
        )
    except hub_errors() as err:
        # Chain the library's error for debugging, unless it somehow quotes the token.
        message = hub_failure(err, verb="publish", repo_id=repo_id, url=url, endpoint=api.endpoint, token=token,
                              token_sources="token=..., HF_TOKEN or `hf auth login`")
        raise PublishError(message) from (None if token_leaks(str(err), token) else err)
    return PublishReport(repo_id, url, private=private, files=files, dry_run=False, commit=info.oid)


def check_folder(folder: str | Path) -> list[tuple[str, int]]:
    """Check that ``folder`` is a dataset folder in the Hub layout; list the files to upload.

    Args:
        folder: the dataset folder.

    Returns:
        ``(path relative to folder, size in bytes)`` for every non-hidden file, sorted by path.

    Raises:
        PublishError: naming what is missing or broken: the folder, ``README.md``, its YAML front
            matter, ``data/*.parquet``, or a parquet file that does not read.

    Example:
        >>> check_folder("coin-flan-paraphrased")[0]  # doctest: +SKIP
        ('README.md', 2311)
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise PublishError(f"{folder}: not a folder (expected a dataset folder written by `coin-data build`)")
    readme = folder / "README.md"
    if not readme.is_file():
        raise PublishError(f"{folder}: no README.md (the dataset card with YAML `configs`)")
    _check_front_matter(readme)

    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not any(part.startswith(".") for part in rel.split("/")):
            files.append((rel, path.stat().st_size))
    parquet = [folder / rel for rel, _ in files if rel.endswith(".parquet")]
    if not any(p.parent == folder / "data" for p in parquet):
        raise PublishError(f"{folder}: no data/*.parquet files (the default config's splits)")
    for path in parquet:
        try:
            pq.read_metadata(path)
        except (pa.ArrowException, OSError) as err:
            raise PublishError(f"{path}: not a readable parquet file ({err})") from err
    return files


def check_repo_id(repo_id: str) -> None:
    """Raise :class:`PublishError` unless ``repo_id`` is a valid ``OWNER/NAME`` Hub repo id.

    Example:
        >>> check_repo_id("alice/coin-flan-paraphrased")  # fine: returns None
        >>> try:
        ...     check_repo_id("coin-flan-paraphrased")
        ... except PublishError as err:
        ...     print(str(err).split(" (")[0])
        repo_id must be OWNER/NAME
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    hint = f"repo_id must be OWNER/NAME (e.g. alice/coin-flan-paraphrased), got {repo_id!r}"
    if not isinstance(repo_id, str) or not _REPO_ID.fullmatch(repo_id):
        raise PublishError(hint)
    try:
        validate_repo_id(repo_id)  # the Hub's own rules: length, no '--' or '..', ...
    except HFValidationError as err:
        raise PublishError(f"{hint}: {err}") from None


# --- helpers ----------------------------------------------------------------------------------


def _check_front_matter(readme: Path) -> None:
    text = readme.read_text(encoding="utf-8")
    match = re.match(r"---\r?\n(.*?)\r?\n---\r?\n", text, flags=re.DOTALL)
    if not match:
        raise PublishError(f"{readme}: no YAML front matter (a block between '---' lines at the top)")
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError as err:
        raise PublishError(f"{readme}: YAML front matter does not parse: {err}") from None
    if not isinstance(meta, dict):
        raise PublishError(f"{readme}: YAML front matter must be a mapping (e.g. `configs: ...`)")


def _repo_url(endpoint: str, repo_id: str) -> str:
    return f"{endpoint.rstrip('/')}/datasets/{repo_id}"


def _ensure_repo(api, repo_id: str, *, public: bool, url: str) -> bool:
    """Create the repo if needed; return whether it is private. Refuse to write to a public repo unasked."""
    api.create_repo(repo_id, repo_type="dataset", private=not public, exist_ok=True)
    private = bool(api.dataset_info(repo_id).private)
    if not public and not private:
        raise PublishError(
            f"{url} already exists and is public; nothing was uploaded. "
            "Pass public=True (--public) to publish to it, or make it private on the Hub first."
        )
    if public and private:
        logger.warning("%s already exists and is private: it stays private (change it on the Hub)", url)
    return private
