r"""The SIMD path the kernels take: one enum, chosen in one place.

Every compiled kernel with SIMD variants takes the path as an argument (``int simd``,
a :class:`Simd` value); the kernel wrappers of :mod:`qlearn.kernels` pass
:func:`active`.  The path is chosen here, from two facts only:

* what the CPU supports (``qlearn._ext._cpu``, raw checks: nothing in C reads the
  environment), and
* the ``QLEARN_SIMD`` environment variable, read once at import: ``generic`` (the
  portable C loops), ``avx2`` (AVX2, VNNI hidden), ``vnni`` or unset/empty (the fastest
  the CPU has).  It caps the path, as PyTorch's ``ATEN_CPU_CAPABILITY`` does; asking
  for a path the CPU lacks, or an unknown value, warns and uses the fastest available.

Every path gives the same bits (the tests check it); only the speed differs.  Tests
and benchmarks compare paths in one process with :func:`use`.

Examples
--------
>>> from qlearn.kernels import simd
>>> simd.available()[0]
<Simd.GENERIC: 0>
>>> with simd.use("generic"):
...     simd.active()
<Simd.GENERIC: 0>
>>> simd.active() == simd.available()[-1]
True
"""
import contextlib
import enum
import os
import warnings

from .._ext import _cpu

__all__ = ["Simd", "available", "active", "use", "cpu_paths"]


class Simd(enum.IntEnum):
    """The SIMD paths, fastest last (the C enum ``QLEARN_SIMD_*`` of ``qlearn_cpu.h``)."""

    GENERIC = 0   #: portable C loops (the reference the others must match)
    AVX2 = 1      #: AVX2 + FMA
    VNNI = 2      #: AVX-512 F/BW/VL + VNNI (int8 dot products); implies AVX2


if tuple(Simd) != (_cpu.SIMD_GENERIC, _cpu.SIMD_AVX2, _cpu.SIMD_VNNI):  # pragma: no cover
    raise ImportError("qlearn.kernels.simd.Simd does not mirror the C enum of "
                      "qlearn_cpu.h; rebuild the extensions")

ENV_VAR = "QLEARN_SIMD"
_NAMES = {p.name.lower(): p for p in Simd}


def cpu_paths():
    """The paths this CPU can run, fastest last, whatever ``QLEARN_SIMD`` says."""
    paths = [Simd.GENERIC]
    if _cpu.has_avx2():
        paths.append(Simd.AVX2)
        if _cpu.has_avx512vnni():
            paths.append(Simd.VNNI)
    return tuple(paths)


def _parse(path, name="path"):
    """``path`` (a :class:`Simd`, its int value or its lower-case name) as a Simd."""
    if isinstance(path, str):
        try:
            return _NAMES[path.strip().lower()]
        except KeyError:
            raise ValueError(f"`{name}` must be one of {', '.join(map(repr, _NAMES))}, "
                             f"got {path!r}") from None
    if isinstance(path, bool) or not isinstance(path, int):
        raise TypeError(f"`{name}` must be a Simd value or one of "
                        f"{', '.join(map(repr, _NAMES))}, got {path!r}")
    try:
        return Simd(path)
    except ValueError:
        raise ValueError(f"`{name}` must be one of {[int(p) for p in Simd]} "
                         f"({', '.join(_NAMES)}), got {path!r}") from None


def _from_environment(cpu):
    """The paths allowed by ``QLEARN_SIMD`` (read once, at import) on a CPU with ``cpu``."""
    value = os.environ.get("QLEARN_SIMD", "").strip()
    if not value:
        return cpu
    try:
        cap = _parse(value, ENV_VAR)
    except ValueError:
        warnings.warn(f"{ENV_VAR}={value!r} is not one of {', '.join(_NAMES)}; ignoring "
                      f"it (using {cpu[-1].name.lower()})", RuntimeWarning, stacklevel=3)
        return cpu
    if cap not in cpu:
        warnings.warn(f"{ENV_VAR}={value} asks for {cap.name} instructions, which this CPU "
                      f"lacks; using {cpu[-1].name.lower()}", RuntimeWarning, stacklevel=3)
        return cpu
    return tuple(p for p in cpu if p <= cap)


_AVAILABLE = _from_environment(cpu_paths())
_active = _AVAILABLE[-1]


def available():
    """The paths the kernels may take, fastest last: the CPU's, capped by ``QLEARN_SIMD``.

    Returns
    -------
    tuple of Simd
        Always starts with :attr:`Simd.GENERIC`.
    """
    return _AVAILABLE


def active():
    """The path the kernels take now: the fastest available, unless inside :func:`use`.

    Returns
    -------
    Simd
    """
    return _active


@contextlib.contextmanager
def use(path):
    """Run the enclosed code with the kernels on SIMD path ``path``.

    Parameters
    ----------
    path : Simd or {"generic", "avx2", "vnni"}
        Must be in :func:`available` (a path the CPU lacks would raise an illegal
        instruction and kill the interpreter; one ``QLEARN_SIMD`` hides is refused too).

    Raises
    ------
    ValueError
        If ``path`` is unknown or not available here.

    Examples
    --------
    >>> import qlearn as ql
    >>> from qlearn.kernels import simd
    >>> with simd.use(simd.Simd.GENERIC):
    ...     ql.quantize_per_tensor([0.5, 1.0], 0.1, 0, ql.quint8).int_repr()
    array([ 5, 10], dtype=uint8)
    """
    global _active
    p = _parse(path)
    if p not in _AVAILABLE:
        why = ("this CPU lacks it" if p not in cpu_paths()
               else f"{ENV_VAR}={os.environ.get(ENV_VAR)} hides it")
        raise ValueError(f"`path` {p.name.lower()!r} is not available ({why}); available: "
                         f"{', '.join(q.name.lower() for q in _AVAILABLE)}")
    before, _active = _active, p
    try:
        yield p
    finally:
        _active = before
