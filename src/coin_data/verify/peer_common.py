"""What the peer sources share: the two parts of a split, the error they raise, their cache folder.

Example:
    >>> hashed_split("verify-example", "sentiment") in (FIT, HELDOUT)
    True
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from coin_data.seeds import stable_seed
from coin_data.templates import OPTIONS_SLOT

HELDOUT = "heldout"
FIT = "fit"


# A ``{slot}`` of a template (not an escaped ``{{``); group 1 is its name.
SLOT_PATTERN = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


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


def by_position(text: str) -> str:
    """Slots renamed by order of appearance (``{x1}``, ``{x2}``); ``{options_}`` keeps its name.

    Two templates of different tasks then hold the same slots, so they can form an ``other_task`` pair.

    Example:
        >>> by_position("Premise: {premise}\\nHypothesis: {hypothesis}\\n{options_}")
        'Premise: {x1}\\nHypothesis: {x2}\\n{options_}'
    """
    names = [n for n in dict.fromkeys(SLOT_PATTERN.findall(text)) if n != OPTIONS_SLOT]
    return SLOT_PATTERN.sub(
        lambda m: m.group(0) if m.group(1) == OPTIONS_SLOT else f"{{x{names.index(m.group(1)) + 1}}}", text)
