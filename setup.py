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
"""
import glob
import os
import subprocess
import sys
import sysconfig
import tempfile
import textwrap

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class ParallelBuildExt(build_ext):
    """Compile the extensions on every core unless ``--parallel`` says otherwise."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1



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

extensions = []
for path in sorted(glob.glob(os.path.join("pyx", "*.pyx"))):
    name = os.path.splitext(os.path.basename(path))[0]
    if only is not None and name not in only:
        continue
    extensions.append(Extension(
        f"qlearn._ext.{name}", [path],
        include_dirs=[np.get_include(), os.path.join("pyx", "include"), "pyx"],
        define_macros=macros, extra_compile_args=compile_args, extra_link_args=link_args,
    ))

setup(
    cmdclass={"build_ext": ParallelBuildExt},
    ext_modules=cythonize(
        extensions,
        include_path=["pyx"],
        compiler_directives={
            "language_level": 3,
            "binding": True,
            "cdivision": True,
        },
        annotate=bool(os.environ.get("QLEARN_ANNOTATE")),
        nthreads=os.cpu_count() or 1,
    ),
)
