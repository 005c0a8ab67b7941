"""The kernel boundary (DESIGN.md): each compiled module of ``qlearn._ext`` is imported by
one wrapper of ``qlearn/kernels/`` and nothing else; ``QLEARN_SIMD`` is read in one
place; the NumPy oracle imports only NumPy."""
import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "qlearn"

#: compiled module -> the one module (path under the repository) allowed to import it
WRAPPERS = {
    "_cpu": "qlearn/kernels/simd.py",
    "_openmp": "qlearn/kernels/threads.py",
    "_quantize": "qlearn/kernels/quantize.py",
    "_qtensor": "qlearn/kernels/quantize.py",
    "_fake_quant": "qlearn/kernels/fake_quant.py",
    "_observer": "qlearn/kernels/observer.py",
    "_quantizers": "qlearn/kernels/quantizers.py",
    "_im2col": "qlearn/kernels/float_conv.py",
    "_pool": "qlearn/kernels/float_conv.py",
    "_qgemm": "qlearn/kernels/int8.py",
    "_qconv": "qlearn/kernels/int8.py",
    "_float_qparams": "qlearn/kernels/float_qparams.py",
    "_embedding": "qlearn/kernels/embedding.py",
    "_qnorm": "qlearn/kernels/norm.py",
    "_lookup": "qlearn/kernels/lookup.py",
}


def _module_name(path):
    """The dotted name of a .py file under the repository (packages by __init__)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node, module, is_package):
    """The absolute module a ``from ... import`` names (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def ext_imports(source, path):
    """``[(compiled module, line)]`` for every import of ``qlearn._ext`` in ``source``.

    Handles ``import qlearn._ext._x``, ``from qlearn._ext import _x``, ``from
    qlearn._ext._x import y`` and their relative spellings (``from .._ext import _x``,
    ``from ..._ext._x import y``); importing the package ``qlearn._ext`` itself counts
    as importing every name taken from it.
    """
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[:2] == ["qlearn", "_ext"]:
                    found.append((parts[2] if len(parts) > 2 else "*", node.lineno))
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, is_package).split(".")
            if target == ["qlearn"]:        # from qlearn import _ext / from . import _ext
                found.extend(("*", node.lineno) for a in node.names if a.name == "_ext")
                continue
            if target[:2] != ["qlearn", "_ext"]:
                continue
            if len(target) > 2:
                found.append((target[2], node.lineno))
            else:
                found.extend((alias.name, node.lineno) for alias in node.names)
    return found


def _python_files():
    return sorted(p for p in PACKAGE.rglob("*.py") if "_ext" not in p.parts)


def boundary_violations(sources):
    """Messages for every import of a compiled module outside its wrapper, for
    ``sources``: ``(path, text)`` pairs."""
    bad = []
    for path, text in sources:
        rel = path.relative_to(ROOT).as_posix()
        for name, line in ext_imports(text, path):
            allowed = WRAPPERS.get(name)
            if allowed != rel:
                bad.append(f"{rel}:{line} imports qlearn._ext.{name}"
                           + (f" (only {allowed} may)" if allowed
                              else " (not a known compiled module)"))
    return bad


def test_every_compiled_module_has_its_one_wrapper():
    compiled = {p.name.split(".")[0] for p in (PACKAGE / "_ext").iterdir()
                if p.suffix in (".so", ".pyd")} - {"_cyutility"}
    sources = {p.stem for p in (ROOT / "pyx").glob("*.pyx")}
    assert sources <= set(WRAPPERS), sources - set(WRAPPERS)
    assert compiled <= set(WRAPPERS), compiled - set(WRAPPERS)
    for name, wrapper in WRAPPERS.items():
        names = [n for n, _ in ext_imports((ROOT / wrapper).read_text(), ROOT / wrapper)]
        assert name in names, f"{wrapper} should import qlearn._ext.{name}"


def test_no_other_module_imports_the_compiled_kernels():
    files = _python_files()
    assert len(files) > 50
    assert boundary_violations((p, p.read_text()) for p in files) == []


@pytest.mark.parametrize("where,line", [
    ("nn/functional.py", "from .._ext import _qgemm"),
    ("nn/quantized/packed_params.py", "from ..._ext._qgemm import gemm"),
    ("nn/quantized/packed_params.py", "from ..._ext import _qconv, _qgemm"),
    ("quantization/observer.py", "import qlearn._ext._observer"),
    ("qtensor.py", "from qlearn._ext import _openmp as om"),
    ("qtensor.py", "from . import _ext"),
    ("kernels/int8.py", "from .._ext import _observer"),     # a wrapper, not its module
    ("kernels/simd.py", "import qlearn._ext._unknown"),
])
def test_the_check_catches_a_stray_import(where, line):
    path = PACKAGE / where
    text = path.read_text() + "\n" + line + "\n"
    bad = boundary_violations([(path, text)])
    assert bad and all(f"{where}:" in b for b in bad), bad


def test_relative_imports_resolve_from_packages_and_modules():
    init = PACKAGE / "nn" / "quantized" / "__init__.py"     # "." is qlearn.nn.quantized
    mod = PACKAGE / "nn" / "quantized" / "functional.py"    # "." is qlearn.nn.quantized
    for where in (init, mod):
        assert ext_imports("from ..._ext import _qgemm\n", where) == [("_qgemm", 1)]
        assert ext_imports("from .._ext import _qgemm\n", where) == []   # qlearn.nn._ext
        assert ext_imports("from ..._ext._qconv import im2col\n", where) == [("_qconv", 1)]
    assert ext_imports("from . import _qconv\n", PACKAGE / "_ext" / "__init__.py") \
        == [("_qconv", 1)]


# an environment read naming QLEARN_SIMD: os.environ["QLEARN_SIMD"], os.environ.get(...),
# os.getenv(...), in Python; getenv("QLEARN_SIMD") in C
_ENV_READ = re.compile(r"(environ|getenv)[^\n]*QLEARN_SIMD")


def test_qlearn_simd_is_read_in_one_place():
    c_sources = [p for p in (ROOT / "pyx").rglob("*") if p.suffix in (".pyx", ".pxd",
                                                                      ".pxi", ".h")]
    assert c_sources
    for path in c_sources:
        assert not _ENV_READ.search(path.read_text()), f"{path} reads QLEARN_SIMD"
        assert "getenv" not in path.read_text(), f"{path} reads the environment"
    readers = [p.relative_to(ROOT).as_posix() for p in _python_files()
               if _ENV_READ.search(p.read_text())]
    assert readers == ["qlearn/kernels/simd.py"]
    for read in ('os.environ.get("QLEARN_SIMD", "")', "os.environ['QLEARN_SIMD']",
                 'os.getenv("QLEARN_SIMD")', 'getenv("QLEARN_SIMD");'):
        assert _ENV_READ.search(read), read


def test_reference_imports_only_numpy():
    tree = ast.parse((PACKAGE / "reference.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add("." if node.level else node.module.split(".")[0])
    assert imported <= {"numpy", "math"}, imported
