"""Every example in the packages' docstrings runs and prints what it shows.

Examples that need a model download, a built folder or a server are marked ``# doctest: +SKIP`` where
they are written; everything else is executed here, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import coin_data
import coin_train


def _modules() -> list[str]:
    names = []
    for package in (coin_data, coin_train):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs=vars(module).copy()):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} docstring examples failed (details above)"
