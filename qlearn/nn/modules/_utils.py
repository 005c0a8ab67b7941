"""Helpers shared by the layer constructors."""
import numpy as np


def check_factory_kwargs(device=None, dtype=None):
    """Accept PyTorch's ``device=`` / ``dtype=`` constructor arguments when they ask for
    what qlearn has (the CPU, float32), and refuse anything else clearly."""
    if device is not None and str(device) != "cpu":
        raise ValueError(f"`device` must be None or 'cpu' (qlearn runs on the CPU), got "
                         f"{device!r}")
    if dtype is None:
        return
    try:   # a NumPy dtype or name, or torch.float32 (spelled "torch.float32")
        ok = np.dtype(str(dtype).rsplit(".", 1)[-1] if "torch" in str(dtype)
                      else dtype) == np.float32
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"`dtype` must be None or float32 (qlearn's float layers are "
                         f"float32), got {dtype!r}")
