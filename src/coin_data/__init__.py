"""coin_data: build contrastive instruction datasets (CoIN) from instruction templates.

The package is laid out as the build pipeline: one folder per stage (``sources``, ``paraphrase``,
``verify``, ``perturb``, ``negatives``, ``hub``) plus ``text`` helpers; see ``docs/architecture.md``.
Modules that moved into a stage folder stay importable under their old names (``coin_data.embed``,
``coin_data.mine``, ...): each old name is an alias of its new module, resolved on first import.

Example:
    >>> import coin_data.embed, coin_data.verify.embedding
    >>> coin_data.embed is coin_data.verify.embedding
    True
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types

__version__ = "0.1.0"

# old module name -> the module(s) that now hold its names (several: a module whose names are merged)
MOVED: dict[str, tuple[str, ...]] = {
    "coin_data.cache": ("coin_data.paraphrase.answer_cache",),
    "coin_data.card": ("coin_data.hub.card",),
    "coin_data.combine": ("coin_data.verify.combine",),
    "coin_data.embed": ("coin_data.verify.embedding",),
    "coin_data.flan": ("coin_data.sources.flan",),
    "coin_data.layout": ("coin_data.hub.layout",),
    "coin_data.lexdiff": ("coin_data.verify.lexdiff",),
    "coin_data.mine": ("coin_data.negatives", "coin_data.hub.remine"),
    "coin_data.paraphrase.hf_backend": ("coin_data.paraphrase.hf",),
    "coin_data.publish": ("coin_data.hub.publish",),
    "coin_data.signals": ("coin_data.verify.signals",),
    "coin_data.stats": ("coin_data.hub.stats",),
    "coin_data.views": ("coin_data.perturb.training_views",),
    "coin_data.wordnet": ("coin_data.text.wordnet",),
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module name to its new module (the same object, so patches reach the real code)."""

    def __init__(self) -> None:
        self._specs: dict[str, object] = {}

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec):
        targets = [importlib.import_module(name) for name in MOVED[spec.name]]
        if len(targets) == 1:
            # the import system sets __spec__ on what we return: keep the real one to put back
            self._specs[targets[0].__name__] = targets[0].__spec__
            return targets[0]
        merged = types.ModuleType(spec.name, f"Names of {', '.join(MOVED[spec.name])} (moved).")
        for target in reversed(targets):
            merged.__dict__.update({k: v for k, v in vars(target).items() if not k.startswith("__")})
        return merged

    def exec_module(self, module):
        """Nothing to run (the target modules ran when imported); give the real module its own spec back."""
        if module.__name__ in self._specs:
            module.__spec__ = self._specs.pop(module.__name__)


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
