"""Extract the code cells of the source documents, run them in PyTorch, and write
``cells.json``: each cell as written (``torch``), renamed for qlearn (``qlearn``), and
what PyTorch printed.  ``tests/test_source_cells.py`` runs the ``qlearn`` version of
every cell and compares.

    python tests/data/source_cells/record.py DIR     # DIR holds the source documents

The documents: the quantization-schemes notebook, the quantization-by-hand notebook,
the notes on Distiller's quantizers (three text dumps of notebooks, cells marked
``In [n]:``) and "Practical Quantization in PyTorch" (a Jupyter notebook; the code
blocks of its markdown cells count as cells too).  PyTorch's quantization design notes
have no code cells.

The renames are the only difference between the two versions of a cell (the test
checks it): the word ``torch`` becomes ``qlearn``, ``torch.ao.quantization`` and
``torch.quantization`` become ``qlearn.quantization``, and the private module
``_numeric_suite`` is ``numeric_suite``.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

DOCUMENTS = [   # (name, file, title, format)
    ("quantization_schemes", "000_2ccf6031f5c126c0.txt",
     "Quantization schemes (notebook)", "text"),
    ("quantization_by_hand", "001_d3a9dc7112052d6e.txt",
     "Quantization by hand (notebook)", "text"),
    ("distiller_notes", "002_e67b29f92a577261.txt",
     "Notes on Distiller's quantizers (notebook)", "text"),
    ("practical_quantization", "003_fadbbb5a227cbaa4.txt",
     "Practical Quantization in PyTorch (notebook)", "ipynb"),
]

RENAMES = [   # applied in order, as regular expressions
    (r"\btorch\.ao\.quantization\b", "qlearn.quantization"),
    (r"\btorch\b", "qlearn"),
    (r"\bquantization\._numeric_suite\b", "quantization.numeric_suite"),
]


def rename(text):
    """The qlearn spelling of torch code (or of torch's printed output)."""
    for pattern, new in RENAMES:
        text = re.sub(pattern, new, text)
    return text


_OUTPUT_START = re.compile(r"^(\(?tensor\(|'|\"|torch\.Tensor$|iinfo\(|\w+Error\b)")


def _code_of_text_cell(block):
    """The code at the start of the text after an ``In [n]:`` marker: blank-line
    separated paragraphs that are Python, up to the first output or markdown."""
    paragraphs = re.split(r"\n[ \t]*\n", block)
    code = []
    for para in paragraphs:
        stripped = para.strip("\n")
        if not stripped.strip():
            continue
        first = stripped.lstrip()
        if first.startswith("##") or _OUTPUT_START.match(first) or \
                re.match(r"^(\*|-|\d+\.)\s", first):   # a heading, an output, a list
            break
        try:
            compile(stripped, "<cell>", "exec")
        except SyntaxError:   # prose
            break
        code.append(stripped)
    return "\n\n".join(code).rstrip() + "\n"


def text_cells(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    blocks = re.split(r"^In \[[^\]]*\]:\n", text, flags=re.M)[1:]
    return [_code_of_text_cell(b) for b in blocks]


def notebook_cells(path):
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    cells = []
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code":
            cells.append(source.rstrip() + "\n")
        elif cell["cell_type"] == "markdown":
            for block in re.findall(r"```python\n(.*?)```", source, flags=re.S):
                cells.append(block.rstrip() + "\n")
    return cells


def run(mode, doc, python=sys.executable):
    """Run ``doc``'s cells (``mode`` "torch" or "qlearn") in a fresh interpreter."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "doc.json"), os.path.join(tmp, "out.json")
        with open(src, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0")
        subprocess.run([python, os.path.join(HERE, "run_cells.py"), mode, src, out],
                       check=True, cwd=tmp, env=env, timeout=1800)
        with open(out, encoding="utf-8") as f:
            return json.load(f)


def main(source_dir):
    import torch
    documents = []
    for name, filename, title, fmt in DOCUMENTS:
        path = os.path.join(source_dir, filename)
        sources = notebook_cells(path) if fmt == "ipynb" else text_cells(path)
        doc = {"name": name, "title": title,
               "cells": [{"index": i, "torch": s, "qlearn": rename(s)}
                         for i, s in enumerate(sources)]}
        result = run("torch", doc)
        for cell, res in zip(doc["cells"], result["results"]):
            cell["torch_output"], cell["torch_error"] = res["output"], res["error"]
            if res["draws"]:
                cell["draws"] = res["draws"]
        documents.append(doc)
        print(f"{name}: {len(sources)} cells, "
              f"{sum(c['torch_error'] is not None for c in doc['cells'])} raise in torch")
    with open(os.path.join(HERE, "cells.json"), "w", encoding="utf-8") as f:
        json.dump({"torch_version": torch.__version__, "documents": documents}, f,
                  indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
