"""Checks shared by the QAT modules' constructors and ``from_float``."""


def check_qconfig(qconfig, who):
    """Raise unless ``qconfig`` is a QConfig-like object with a ``weight`` factory."""
    if not qconfig:
        raise ValueError(f"{who}: `qconfig` must be given for a QAT module (a QConfig "
                         f"whose `weight` makes the weight's fake quantizer), got "
                         f"{qconfig!r}")
    if not callable(getattr(qconfig, "weight", None)):
        raise TypeError(f"{who}: `qconfig.weight` must be a fake-quantize factory, got "
                        f"{getattr(qconfig, 'weight', None)!r}")


def float_qconfig(mod, expected, who):
    """``mod.qconfig`` after checking ``type(mod)`` is one of ``expected``."""
    if type(mod) not in expected:
        names = " or ".join(t.__name__ for t in expected)
        raise TypeError(f"{who}.from_float expects a float {names}, got "
                        f"{type(mod).__name__}")
    qconfig = getattr(mod, "qconfig", None)
    if not qconfig:
        raise ValueError(f"{who}.from_float: the float module {type(mod).__name__} has no "
                         f"`qconfig`; set `module.qconfig` (prepare_qat does it from the "
                         f"model's qconfig) first")
    return qconfig
