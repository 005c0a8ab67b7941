"""``qlearn.backends.quantized.engine``: the name of the quantized engine, as in PyTorch.

PyTorch dispatches its int8 operators to FBGEMM/x86 (servers) or QNNPACK (ARM) by this
setting.  qlearn has one set of int8 kernels for every engine; the name is kept so that
code written for PyTorch runs unchanged, and so that tools can pick the matching default
qconfig (:func:`qlearn.quantization.qconfig.get_default_qconfig`).

>>> import qlearn as ql
>>> ql.backends.quantized.engine
'x86'
>>> ql.backends.quantized.engine = 'fbgemm'
>>> ql.backends.quantized.engine
'fbgemm'
>>> ql.backends.quantized.engine = 'x86'
"""

__all__ = ["quantized"]


class _QuantizedEngine:
    """Holds the engine name; ``engine`` is a validated property."""

    supported_engines = ["qnnpack", "onednn", "x86", "fbgemm"]

    def __init__(self):
        self._engine = "x86"

    @property
    def engine(self):
        return self._engine

    @engine.setter
    def engine(self, name):
        if name not in self.supported_engines:
            raise ValueError(f"`engine` must be one of "
                             f"{', '.join(map(repr, self.supported_engines))}, got {name!r}")
        self._engine = name

    def __repr__(self):
        return f"qlearn.backends.quantized(engine={self._engine!r})"


quantized = _QuantizedEngine()
