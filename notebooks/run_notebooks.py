"""Execute the notebooks in place so the committed copies carry outputs from a real run.

    python notebooks/run_notebooks.py                    # all notebooks, full parameters
    python notebooks/run_notebooks.py 01_build_dataset   # one notebook
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).parent


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line: notebook names (without ``.ipynb``), none meaning all; unknown names are refused."""
    available = sorted(path.stem for path in HERE.glob("*.ipynb"))
    parser = argparse.ArgumentParser(
        prog="python notebooks/run_notebooks.py",
        description="Execute notebooks in place (full parameters), so the committed copies carry the outputs "
        "of a real run. Needs nbclient, nbformat and ipykernel (the 'test' extra).",
        epilog="example: python notebooks/run_notebooks.py 01_build_dataset",
    )
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"notebook to run (default: all): {', '.join(available) or 'none found'}")
    parser.add_argument("--timeout", type=int, default=7200, help="seconds per cell (default: %(default)s)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name.removesuffix(".ipynb") not in available]
    if unknown:
        parser.error(f"no notebook named {', '.join(unknown)} in {HERE} (have: {', '.join(available)})")
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    import nbformat  # imported after parsing, so --help works without the notebooks extra
    from nbclient import NotebookClient

    names = [name.removesuffix(".ipynb") for name in args.names]
    paths = [HERE / f"{n}.ipynb" for n in names] if names else sorted(HERE.glob("*.ipynb"))
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(notebook, timeout=args.timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(HERE)}})
        client.execute()
        nbformat.write(notebook, path)
        print(f"executed {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
