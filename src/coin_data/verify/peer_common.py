"""What the peer sources share: the two parts of a split, the error they raise, their cache folder.

Example:
    >>> hashed_split("verify-example", "sentiment") in (FIT, HELDOUT)
    True
"""

from __future__ import annotations

import os
from pathlib import Path

from coin_data.seeds import stable_seed

HELDOUT = "heldout"
FIT = "fit"


class PeerDataError(RuntimeError):
    """The peer data could not be fetched or read; the message says what to do."""


def hashed_split(salt: str, family: str, share: int = 3) -> str:
    """``heldout`` for one family in ``share`` (by a stable hash of ``salt`` and the family), else ``fit``."""
    return HELDOUT if stable_seed(salt, family) % share == 0 else FIT


def cache_folder(path: str | Path | None, env: str, default: Path) -> Path:
    """``path``, else the folder named by the environment variable ``env``, else ``default``; ``~`` expanded.

    Example:
        >>> cache_folder("~/x", "COIN_UNSET_FOR_EXAMPLE", Path("/tmp")) == Path("~/x").expanduser()
        True
    """
    return Path(path or os.environ.get(env) or default).expanduser()
