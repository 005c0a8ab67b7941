"""Run-time configuration: threads and a report of how qlearn was built."""
import platform

import numpy as np

from .kernels import simd, threads

__all__ = ["set_num_threads", "get_num_threads", "show_config"]


def set_num_threads(n):
    """Use ``n`` threads in qlearn's parallel kernels (overrides ``OMP_NUM_THREADS``).

    Results never depend on the thread count: every kernel splits work so that each
    output element is computed by one thread, in the same order.  ``n`` must be an
    integer in ``[1, max(64, 4 * os.cpu_count())]``; larger counts raise ``ValueError``
    (PyTorch accepts them and may then die inside OpenMP), and a larger
    ``OMP_NUM_THREADS`` is clamped to that bound at import.

    In a child made by ``fork()`` (multiprocessing's default on Linux) of a process
    that had run OpenMP kernels on several threads, those kernels run on one thread:
    libgomp's worker threads do not survive ``fork()``, and a parallel region there
    would wait for them forever.  The int8 GEMM and convolutions, on qlearn's own pool,
    keep ``n`` threads in the child.
    """
    threads.set_num_threads(n)


def get_num_threads():
    """The number of threads qlearn's parallel kernels use."""
    return threads.get_num_threads()


def show_config(file=None):
    """Print (and return) version, OpenMP, SIMD path and thread count."""
    from . import __version__
    names = [p.name.lower() for p in simd.available()]
    lines = [
        f"qlearn {__version__}",
        f"  python        {platform.python_version()} ({platform.machine()})",
        f"  numpy         {np.__version__}",
        f"  openmp        {'on' if threads.OPENMP_ENABLED else 'off (kernels run serially)'}",
        f"  simd          {simd.active().name.lower()} (available: {', '.join(names)}; "
        f"QLEARN_SIMD=generic|avx2|vnni caps it)",
        f"  threads       {get_num_threads()}",
    ]
    text = "\n".join(lines)
    print(text, file=file)
    return text
