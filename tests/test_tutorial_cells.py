"""The tutorials and pages as text, without building the docs.

* A code cell of a tutorial or of an executed page that prints, or shows the value of
  its last expression, also checks what it shows (an ``assert``, an ``np.testing``
  comparison or ``gradcheck``, which raises), so a result that changes fails the docs
  build instead of printing something else.
* The word the docs never use (the source material is cited by its titles) appears in
  no page, tutorial or the README, in any case.
"""
import ast
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("*.ipynb"))
PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)
CHECK = re.compile(r"\bassert\b|np\.testing\.|\bassert_\w+\(|\bgradcheck\(")
# last expressions that show no numbers
SILENT_CALLS = {"set_printoptions", "show", "tight_layout", "display", "plot", "Image"}
CODE_CELL = re.compile(r"```\{code-cell\}[^\n]*\n(.*?)\n```", re.S)


def _code_cells(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(i, "".join(c["source"])) for i, c in enumerate(cells) if c["cell_type"] == "code"]


def _page_cells(path):
    """The ``{code-cell}`` blocks of a MyST page, without their option lines."""
    cells = CODE_CELL.findall(path.read_text(encoding="utf-8"))
    return [(i, "\n".join(line for line in src.split("\n")
                          if not line.startswith(":") and line != "---"))
            for i, src in enumerate(cells)]


def _shows_something(src):
    tree = ast.parse(src)
    # a print inside a function prints when the function is called, in another cell
    top = [stmt for stmt in tree.body
           if not isinstance(stmt, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
    prints = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                 and n.func.id == "print" for stmt in top for n in ast.walk(stmt))
    last = tree.body[-1] if tree.body else None
    shows = isinstance(last, ast.Expr)
    if shows and isinstance(last.value, ast.Call):
        func = last.value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        # ``type(t)`` shows a class, the silent calls nothing
        shows = name not in SILENT_CALLS and name != "type"
    return prints or shows


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_cells_that_show_values_check_them(path):
    unchecked = [f"cell {i}: {src.strip().splitlines()[-1]}" for i, src in _code_cells(path)
                 if _shows_something(src) and not CHECK.search(src)]
    assert not unchecked, f"{path.name}: cells that show values without checking them:\n" \
        + "\n".join(unchecked)


@pytest.mark.parametrize("path", PAGES, ids=[p.stem for p in PAGES])
def test_page_cells_that_show_values_check_them(path):
    unchecked = [f"cell {i}: {src.strip().splitlines()[-1]}" for i, src in _page_cells(path)
                 if _shows_something(src) and not CHECK.search(src)]
    assert not unchecked, f"{path.name}: cells that show values without checking them:\n" \
        + "\n".join(unchecked)


def test_checker_sees_unchecked_cells():
    assert _shows_something("x = 1\nprint(x)")
    assert _shows_something("x = 1\nx")
    assert not _shows_something("x = 1")
    assert not _shows_something("np.set_printoptions(precision=4)")
    assert not _shows_something("def f():\n    print(1)")
    assert CHECK.search("np.testing.assert_array_equal(a, b)")


def _text_files():
    docs = [p for p in (ROOT / "docs").rglob("*")
            if p.is_file() and p.suffix in (".md", ".rst", ".py", ".ipynb", ".txt")
            and "_build" not in p.parts and "jupyter_execute" not in p.parts]
    return docs + TUTORIALS + [ROOT / "README.md"]


def test_no_word_seed_in_the_docs():
    word = "se" + "ed"          # spelled so that this file passes its own grep
    hits = []
    for f in _text_files():
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if word in line.lower():
                hits.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not hits, "\n".join(hits)
