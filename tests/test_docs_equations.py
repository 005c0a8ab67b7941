"""The equations table of the docs (docs/equations_table.py) against the docs' sources.

The docs build checks the same things with Sphinx's own data; these tests check them in
a second, without building: every row's functions import, every row's label is defined
exactly once and on the page the row names, and no label is defined twice.
"""
import importlib
import json
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS))
equations_table = importlib.import_module("equations_table")

# `:label: name` (reST, and docstrings), `$$ (name)` (MyST, notebooks)
LABEL_RST = re.compile(r"^\s*:label:\s*([\w-]+)\s*$", re.M)
LABEL_MYST = re.compile(r"^\s*\$\$\s*\(([\w-]+)\)\s*$", re.M)


def _page_text(path):
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return path.read_text()


def _defined_labels():
    """label -> list of docnames (or source files) that define it."""
    where = {}
    pages = [p for p in DOCS.rglob("*") if p.suffix in (".rst", ".md", ".ipynb")
             and "_build" not in p.parts and "jupyter_execute" not in p.parts]
    pages += list((ROOT / "tutorials").glob("*.ipynb"))
    for page in pages:
        text = _page_text(page)
        rel = page.relative_to(ROOT / "tutorials" if page.is_relative_to(ROOT / "tutorials")
                               else DOCS)
        docname = (("tutorials/" if page.is_relative_to(ROOT / "tutorials") else "")
                   + str(rel.with_suffix("")))
        for label in LABEL_RST.findall(text) + LABEL_MYST.findall(text):
            where.setdefault(label, []).append(docname)
    # docstrings: a label there is typeset on every page that shows the docstring
    for py in (ROOT / "qlearn").rglob("*.py"):
        for label in LABEL_RST.findall(py.read_text()):
            where.setdefault(label, []).append(str(py.relative_to(ROOT)))
    return where


def _resolve(name):
    """``a.b.C.d``: attributes from the top package down, importing submodules on the way
    (``qlearn.onnx.export`` is the function the package exports, not its module)."""
    parts = name.split(".")
    obj = importlib.import_module(parts[0])
    for i, attr in enumerate(parts[1:], 1):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[:i + 1]))
    return obj


ROWS = equations_table.EQUATIONS


@pytest.mark.parametrize("row", ROWS, ids=[r.label for r in ROWS])
def test_functions_import(row):
    assert row.functions, f"{row.label}: no function named"
    for name in row.functions:
        assert callable(_resolve(name)), f"{row.label}: {name} is not callable"


@pytest.mark.parametrize("row", ROWS, ids=[r.label for r in ROWS])
def test_label_defined_once_on_its_page(row):
    where = _defined_labels().get(row.label)
    assert where == [row.page], (f"label {row.label!r} is defined in {where}, "
                                 f"the table says {row.page!r}")


def test_sources_known():
    for row in ROWS:
        for key in row.sources:
            assert key in equations_table.SOURCES, f"{row.label}: unknown source {key!r}"


def test_table_has_one_row_per_label():
    labels = [r.label for r in ROWS]
    assert len(labels) == len(set(labels))


def test_no_label_defined_twice():
    twice = {lab: w for lab, w in _defined_labels().items() if len(w) > 1}
    assert not twice, f"labels defined more than once: {twice}"


def test_source_documents_cited_by_title():
    """The docs cite the source material by title, never as numbered files."""
    pattern = re.compile(r"\bseeds?\s+00\d|\bthe seed'?s?\b|\bseed (notebook|document)",
                         re.I)
    hits = []
    files = [p for p in (ROOT / "docs").rglob("*") if p.suffix in (".rst", ".md", ".py")]
    files += list((ROOT / "tutorials").glob("*.ipynb")) + list((ROOT / "qlearn").rglob("*.py"))
    files += [ROOT / "README.md"]
    for f in files:
        if "_build" in f.parts or not f.exists():
            continue
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not hits, "\n".join(hits)
