"""Build qlearn: every ``pyx/*.pyx`` becomes ``qlearn._ext.<name>``.

Two build-time decisions are made here, both by compiling a tiny probe program:

* **OpenMP.** If the compiler accepts ``-fopenmp`` the kernels are linked with it;
  otherwise the build prints a warning and every ``prange`` runs serially.
* **SIMD.** All modules are compiled for the baseline x86-64 instruction set, so the
  build never emits an instruction the CPU might lack.  AVX2 micro-kernels live in
  ``pyx/include/*.h`` as functions marked ``__attribute__((target("avx2,fma")))`` and
  are called only after a run-time CPU check (``__builtin_cpu_supports``).  Setting
  ``QLEARN_SIMD=generic`` at run time selects the portable loops instead.

Set ``QLEARN_BUILD_ONLY=_quantize,_observer`` to (re)build a subset while developing, and
``QLEARN_SANITIZE=1`` for the sanitizer build of ``make asan`` (see .ci/asan).

**Build cache.** pip builds in a fresh temporary environment each time, so a plain
setuptools build would recompile every module on every ``pip install -e .``.  Instead each
compiled module is kept in ``build/ext-cache/`` under a key that hashes everything the
``.so`` depends on: the ``.pyx`` and every ``.pxd``/``.pxi``/``.h`` of this tree it reaches
(``cimport``, ``include``, ``cdef extern from``, ``#include "..."``), the compiler, its flags
and macros (so ``QLEARN_NO_OPENMP``, ``QLEARN_SANITIZE``, ``CFLAGS`` ... all count), the
Cython directives and version, the Python ABI and the NumPy version; not the temporary
NumPy include path.  A module whose key is cached is copied into place; the others are
cythonized (only when their ``.c`` was generated from other inputs) and compiled.
``build_ext --force``, ``QLEARN_NO_BUILD_CACHE=1`` or ``QLEARN_ANNOTATE=1`` bypasses the
cache; deleting ``build/ext-cache/`` empties it.

**Build time.** Most of each generated ``.c`` is Cython's memoryview and fused-function
support, the same in every module: it is generated once, as ``qlearn._ext._cyutility``
(Cython's shared utility module, hence Cython >= 3.1), which the other modules import.
Modules are compiled with ``-g0`` (Python's own ``CFLAGS`` ask for ``-g``, which costs a
third of the compile time and does not change the code).  Kernel modules stay at ``-O3``;
the three without a hot loop (``GLUE_MODULES`` and the shared module) get ``-O1``.
"""
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap

import Cython
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE_DIR = os.path.join(HERE, "build", "ext-cache")
CACHE_KEEP = 6  # builds kept per module (the most recently used): flags, OpenMP on and off
# The memoryview and fused-function support Cython would otherwise paste into every module
# (about half of each generated .c) is compiled once, into this module, which the others
# import.  This halves the build; the kernels' code is unchanged.
SHARED_UTILITY = "qlearn._ext._cyutility"
# Modules with no hot loop (Python-object glue: the shared utility code, the QTensor class,
# the thread-count query) compile at -O1, a third of their -O3 time; the per-call cost of
# a small kernel call and of QTensor methods measured the same at -O1, -O2 and -O3.
GLUE_OPT = ["-O1"]
GLUE_MODULES = {"_qtensor", "_openmp", "_cpu"}
CYTHON_OPTIONS = {
    "include_path": ["pyx"],
    "compiler_directives": {"language_level": 3, "binding": True, "cdivision": True},
    "shared_utility_qualified_name": SHARED_UTILITY,
}
_DEP_PATTERNS = (
    (re.compile(r"^\s*(?:from\s+(\w+)\s+cimport|cimport\s+(\w+))", re.M), ".pxd"),
    (re.compile(r"^\s*include\s+[\"']([^\"']+)[\"']", re.M), ""),
    (re.compile(r"cdef\s+extern\s+from\s+[\"']([^\"']+)[\"']"), ""),
    (re.compile(r"^\s*#\s*include\s*\"([^\"]+)\"", re.M), ""),
)


def _read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def _sha256(data):
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()


def _local_deps(source, search):
    """Every file of this tree that ``source`` reaches through cimport/include/extern."""
    seen, todo = [], [source]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.append(path)
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for pattern, suffix in _DEP_PATTERNS:
            for match in pattern.finditer(text):
                name = next(g for g in match.groups() if g) + suffix
                for folder in [os.path.dirname(path), *search]:
                    candidate = os.path.normpath(os.path.join(folder, name))
                    if os.path.isfile(candidate):
                        todo.append(candidate)
                        break
    return sorted(seen)


def _compiler_id():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    try:
        version = subprocess.run(cc.split() + ["--version"], capture_output=True,
                                 text=True).stdout
    except OSError:
        version = ""
    return [cc, version] + [os.environ.get(v, "") for v in ("CFLAGS", "CPPFLAGS", "LDFLAGS")] \
        + [str(sysconfig.get_config_var(v)) for v in ("CFLAGS", "LDSHARED", "EXT_SUFFIX")]


def _atomic_copy(src, dst):
    # Copy, then rename over the target: a process that has the old .so mapped keeps it.
    # The copy gets the current time, not the source's: setuptools copies build/lib's .so
    # into the tree (--inplace, editable installs) only when it is newer than the one
    # there, so a cached .so restored with its old time was silently not installed.
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    tmp = f"{dst}.tmp{os.getpid()}"
    shutil.copyfile(src, tmp)
    shutil.copymode(src, tmp)
    os.replace(tmp, dst)


class CachedBuildExt(build_ext):
    """Reuse cached builds (see the module docstring); compile the rest on every core."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def _keys(self, ext):
        """(key of the generated .c, key of the .so) of ``ext``."""
        pyx = [s for s in ext.sources if s.endswith(".pyx")]
        search = [d for d in ext.include_dirs if not os.path.isabs(d)]
        files = [(os.path.relpath(p, HERE), _sha256(_read(p, "rb")))
                 for s in pyx for p in _local_deps(s, search)]
        c_key = _sha256(json.dumps([files, CYTHON_OPTIONS, Cython.__version__, np.__version__]))
        numpy_inc = np.get_include()
        so_key = _sha256(json.dumps([
            c_key, ext.name, ext.sources, ext.extra_compile_args, ext.extra_link_args,
            [list(m) for m in ext.define_macros], ext.undef_macros, ext.libraries,
            ["<numpy>" if d == numpy_inc else d for d in ext.include_dirs],
            ext.language, sys.version, sys.platform, self._compiler,
        ]))
        return c_key, so_key

    def build_extensions(self):
        # QLEARN_ANNOTATE wants the HTML that only cythonizing writes.
        annotate = bool(os.environ.get("QLEARN_ANNOTATE"))
        use_cache = not (self.force or annotate or os.environ.get("QLEARN_NO_BUILD_CACHE"))
        self._compiler = _compiler_id()
        todo = []
        for ext in self.extensions:
            c_key, so_key = self._keys(ext)
            cached = os.path.join(CACHE_DIR, f"{ext.name.split('.')[-1]}-{so_key[:20]}.so")
            if use_cache and os.path.isfile(cached):
                _atomic_copy(cached, self.get_ext_fullpath(ext.name))
                os.utime(cached)
                print(f"reusing {ext.name} from {os.path.relpath(cached, HERE)}")
            else:
                todo.append((ext, c_key, cached))
        if not todo:
            return
        os.makedirs(CACHE_DIR, exist_ok=True)
        to_cythonize = []
        for ext, c_key, _ in todo:
            c_files = [s[:-4] + ".c" if s.endswith(".pyx") else s for s in ext.sources]
            stamp = os.path.join(CACHE_DIR, ext.name + ".c.key")
            fresh = (all(os.path.isfile(c) for c in c_files) and os.path.isfile(stamp)
                     and _read(stamp) == c_key)
            if fresh and use_cache:
                ext.sources = c_files
            else:
                to_cythonize.append((ext, c_key, stamp))
        if to_cythonize:
            done = cythonize([ext for ext, _, _ in to_cythonize], force=True,
                             annotate=annotate,
                             nthreads=self.parallel, **CYTHON_OPTIONS)
            by_name = {new.name: new for new in done}
            for ext, c_key, stamp in to_cythonize:
                ext.sources = by_name[ext.name].sources
                with open(stamp, "w") as f:
                    f.write(c_key)
        # force: a .so left in build/lib by an earlier build with other flags looks up to
        # date to distutils (it only compares times with the sources), and is not.
        everything, self.extensions = self.extensions, [ext for ext, _, _ in todo]
        force, self.force = self.force, True
        try:
            super().build_extensions()
        finally:
            self.extensions, self.force = everything, force
        for ext, _, cached in todo:
            _atomic_copy(self.get_ext_fullpath(ext.name), cached)
            name = ext.name.split(".")[-1]
            old = sorted(glob.glob(os.path.join(CACHE_DIR, f"{name}-*.so")),
                         key=os.path.getmtime, reverse=True)
            for path in old[CACHE_KEEP:]:
                os.remove(path)


def _compiler_accepts(flags, source):
    """Return True if the C compiler builds and links ``source`` with ``flags``."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(textwrap.dedent(source))
        cmd = cc + [src, "-o", os.path.join(tmp, "probe")] + flags
        try:
            return subprocess.run(cmd, capture_output=True).returncode == 0
        except OSError:
            return False


OPENMP_PROBE = """
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""

X86_TARGET_PROBE = """
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static int f(void) {
    __m256i a = _mm256_set1_epi8(1);
    return _mm256_extract_epi32(_mm256_maddubs_epi16(a, a), 0);
}
int main(void) { return __builtin_cpu_supports("avx2") ? f() - 131074 : 0; }
"""

openmp = (os.environ.get("QLEARN_NO_OPENMP") is None
          and _compiler_accepts(["-fopenmp"], OPENMP_PROBE))
if not openmp:
    print("WARNING: building without OpenMP (QLEARN_NO_OPENMP is set, or the C compiler "
          "lacks it); qlearn kernels will run serially.", file=sys.stderr)
x86_simd = _compiler_accepts([], X86_TARGET_PROBE)

compile_args = ["-O3", "-fno-math-errno", "-ffp-contract=off"]
link_args = []
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
          ("QLEARN_HAVE_OPENMP", int(openmp)),
          ("QLEARN_HAVE_X86_SIMD", int(x86_simd))]
if openmp:
    compile_args.append("-fopenmp")
    link_args.append("-fopenmp")
if os.environ.get("QLEARN_SANITIZE"):
    # `make asan` (.ci/asan): AddressSanitizer and UndefinedBehaviorSanitizer, including
    # float-to-int casts out of range; any report aborts the process.
    sanitize = ["-fsanitize=address,undefined,float-cast-overflow",
                "-fno-sanitize-recover=undefined,float-cast-overflow",
                "-fno-omit-frame-pointer", "-g"]
    compile_args = ["-O1"] + compile_args[1:] + sanitize
    link_args = link_args + sanitize

only = os.environ.get("QLEARN_BUILD_ONLY")
only = set(only.split(",")) if only else None

extensions = [Extension(
    SHARED_UTILITY, [os.path.join("pyx", "_cyutility.c")], define_macros=macros,
    extra_compile_args=["-g0", *compile_args, *GLUE_OPT], extra_link_args=link_args,
)]
for path in sorted(glob.glob(os.path.join("pyx", "*.pyx"))):
    name = os.path.splitext(os.path.basename(path))[0]
    if only is not None and name not in only:
        continue
    extensions.append(Extension(
        f"qlearn._ext.{name}", [path],
        include_dirs=[np.get_include(), os.path.join("pyx", "include"), "pyx"],
        # -g0: Python's CFLAGS ask for debug info, a third of the compile time and unused
        # (it never changes the code); a "-g" in compile_args still wins.
        define_macros=macros,
        extra_compile_args=["-g0", *compile_args, *(GLUE_OPT if name in GLUE_MODULES else [])],
        extra_link_args=link_args,
    ))

setup(
    cmdclass={"build_ext": CachedBuildExt},
    # Cythonized lazily by CachedBuildExt, only the modules it has to compile.
    ext_modules=extensions,
)
