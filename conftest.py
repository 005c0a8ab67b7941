"""Docstring examples (``pytest --doctest-modules qlearn``) see ``np`` and ``ql``, as the
docs' doctests do (docs/conf.py: doctest_global_setup)."""
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    import qlearn
    doctest_namespace["np"] = np
    doctest_namespace["ql"] = qlearn
