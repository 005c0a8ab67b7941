"""``nn.Upsample``: the module form of :func:`qlearn.nn.functional.interpolate`."""
from .module import Module

__all__ = ["Upsample"]


class Upsample(Module):
    r"""Resize (N, C, H, W) inputs by nearest-neighbour or bilinear sampling, as
    ``torch.nn.Upsample`` (the equations are on :func:`qlearn.nn.functional.interpolate`).

    A QTensor input is resized on its integers, keeping its scale and zero point
    (:func:`qlearn.nn.quantized.functional.interpolate`), as PyTorch's float module
    resizes quantized tensors: in a quantized model it needs no observer and no swap.

    Parameters
    ----------
    size : int or (int, int), optional
    scale_factor : float or (float, float), optional
    mode : {"nearest", "bilinear"}
    align_corners : bool, optional
    recompute_scale_factor : bool, optional

    Examples
    --------
    >>> from qlearn import nn
    >>> up = nn.Upsample(scale_factor=2, mode="bilinear")
    >>> up
    Upsample(scale_factor=2.0, mode='bilinear')
    >>> up(np.ones((1, 3, 4, 5), np.float32)).shape
    (1, 3, 8, 10)
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor is not None else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        from ..functional_interpolate import interpolate
        return interpolate(input, self.size, self.scale_factor, self.mode,
                           self.align_corners,
                           recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self):
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return info + f", mode={self.mode!r}"
