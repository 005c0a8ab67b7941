# The few commands a contributor runs.  `make help` lists them.
PY ?= python

.PHONY: help build test test-generic fuzz asan docs doctest bench annotate lint ci clean

help:
	@echo "build        compile the Cython kernels in place (pip install -e . does the same)"
	@echo "test         run the test suite"
	@echo "test-generic run the kernel tests on the portable (non-AVX2) loops"
	@echo "fuzz         the fuzz suite, long run (QLEARN_FUZZ_EXAMPLES=1000; default CI run: 150)"
	@echo "asan         kernels built with ASan+UBSan in build/asan, kernel tests + fuzz under them"
	@echo "docs         build the HTML docs with warnings as errors"
	@echo "doctest      run every example on the docs pages"
	@echo "bench        run every benchmark (ratios against NumPy and PyTorch)"
	@echo "annotate     write cython -a HTML next to each pyx/*.pyx"
	@echo "lint         ruff on Python, cython-lint on Cython"
	@echo "ci           what CI runs: bash .ci/run"

build:
	$(PY) setup.py build_ext --inplace

test:
	$(PY) -m pytest

test-generic:
	QLEARN_SIMD=generic $(PY) -m pytest tests/test_qtensor.py

fuzz:
	QLEARN_FUZZ_EXAMPLES=$${QLEARN_FUZZ_EXAMPLES:-1000} $(PY) -m pytest -p no:cacheprovider tests/fuzz

asan:
	bash .ci/asan

docs:
	$(PY) -m sphinx -W -b html docs docs/_build/html

doctest:
	$(PY) -m sphinx -W -b doctest docs docs/_build/doctest

bench:
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

annotate:
	QLEARN_ANNOTATE=1 $(PY) setup.py build_ext --inplace --force

lint:
	ruff check qlearn tests benchmarks
	cython-lint --max-line-length 100 pyx/*.pyx pyx/*.pxd

ci:
	bash .ci/run

clean:
	rm -rf build docs/_build pyx/*.c pyx/*.html qlearn/_ext/*.so
