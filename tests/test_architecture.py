"""The import rules of docs/architecture.md, checked statically (every module's imports parsed with ``ast``).

* coin_data never imports coin_train (coin_train may import coin_data);
* no import cycle between coin_data's modules, nor between its folders and top-level modules;
* a stage folder imports only itself, the shared base modules and ``text``: only the build (``build``,
  ``assemble``), the CLI and the re-mining of a built folder (``hub.remine``, a build of its own) import across
  stages.

Imports under ``if TYPE_CHECKING:`` are annotations, not dependencies, and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
STAGES = ("sources", "paraphrase", "verify", "perturb", "negatives", "hub")
SHARED = ("schema", "templates", "jsonl", "models", "seeds", "text", "counts")  # used by every stage, import no stage
ORCHESTRATORS = ("build", "assemble", "cli", "hub.remine")
# The one stage module that composes others, and why; anything new fails the test below.
CROSSINGS = {
    "perturb.perturber": {"paraphrase", "verify"},  # the semantic level is a verified paraphrase; word swaps
    # keep only swaps the embedding cache scores as close (their synonyms come from the shared text.lexicon)
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.AST) -> list[str]:
    """Absolute names imported anywhere in ``tree`` (functions included), ``TYPE_CHECKING`` blocks left out."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def import_graph(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` (and of other first-party packages) it imports at run time."""
    modules = {_module_name(p): p for p in (SRC / package).rglob("*.py")}
    first_party = {_module_name(p) for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            # `from coin_data import schema` names a module; `from coin_data.x import f` names a function
            while imported and imported not in first_party:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and imported != package:
                targets.add(imported)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or None.

    Example:
        >>> find_cycle({"a": {"b"}, "b": {"a"}})
        ['a', 'b', 'a']
        >>> find_cycle({"a": {"b"}, "b": set()}) is None
        True
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _unit(module: str) -> str:
    """The folder or top-level module of coin_data that ``module`` belongs to (``verify``, ``build`` ...)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_coin_data_never_imports_coin_train():
    offenders = {m: sorted(t for t in targets if t.startswith("coin_train"))
                 for m, targets in import_graph("coin_data").items()}
    assert not {m: t for m, t in offenders.items() if t}


@pytest.mark.parametrize("package", ["coin_data", "coin_train"])
def test_no_import_cycle_between_modules(package):
    graph = import_graph(package)
    assert find_cycle({m: {t for t in ts if t.startswith(package)} for m, ts in graph.items()}) is None


def test_no_import_cycle_between_folders():
    units: dict[str, set[str]] = {}
    for module, targets in import_graph("coin_data").items():
        units.setdefault(_unit(module), set()).update(
            _unit(t) for t in targets if t.startswith("coin_data.") and _unit(t) != _unit(module))
    assert find_cycle(units) is None


def test_only_the_build_imports_across_stages():
    crossing = {}
    for module, targets in import_graph("coin_data").items():
        short = module.removeprefix("coin_data.")
        if _unit(module) not in STAGES and _unit(module) not in SHARED:
            continue
        if short in ORCHESTRATORS:
            continue
        foreign = sorted(t for t in targets if t.startswith("coin_data.")
                         and _unit(t) != _unit(module) and _unit(t) not in SHARED)
        foreign = [t for t in foreign if _unit(t) not in CROSSINGS.get(short, ())]
        if _unit(module) in SHARED:  # the shared modules import no stage at all
            foreign = sorted(t for t in targets if t.startswith("coin_data.") and _unit(t) in STAGES)
        if foreign:
            crossing[short] = foreign
    assert crossing == {}
