"""Sphinx configuration for the qlearn docs.

Build with ``sphinx-build -W -b html docs docs/_build/html``.  Notebooks (tutorials/ and
any .ipynb or MyST .md page) are executed during the build by myst-nb; doctests in
docstrings and pages run with ``sphinx-build -b doctest``.  Math is rendered by a MathJax
copy shipped in the ``sphinx-mathjax-offline`` package, so no network is needed.
"""
import os
import sys

import qlearn

# docs/_ext holds the project's own extensions (the Equations page and its checks).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))

project = "qlearn"
author = "the qlearn developers"
copyright = "2026, the qlearn developers"
release = version = qlearn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "myst_nb",
    "equations",
]

html_theme = "furo"
html_title = f"qlearn {release}"

autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autosummary_generate = False
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
# NumPy-style type strings ("array_like of float, shape (C,)") are cross-referenced word
# by word, and "shape" then names both Tensor.shape and QTensor.shape: that ambiguity is
# not an error in the docs, so Sphinx is not asked to report it.
suppress_warnings = ["ref.python"]

# MyST: $...$ and $$...$$ math in Markdown pages and notebooks.
myst_enable_extensions = ["dollarmath", "amsmath"]
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_merge_streams = True

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]

doctest_global_setup = """
import numpy as np
import qlearn as ql
"""

# Plots made during the build go here; pages include them with .. image::
sys.path.insert(0, os.path.dirname(__file__))
