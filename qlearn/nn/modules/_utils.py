"""Helpers shared by the layer constructors."""
import numpy as np

from ..parameter import Parameter


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


def check_conv_channels(in_channels, out_channels, groups, allow_bool=False):
    """Check a float convolution's channel counts and ``groups`` as PyTorch's do: all
    positive ints, both counts divisible by ``groups``.  ``allow_bool`` keeps
    ``nn.Conv2d``'s older acceptance of ``True`` as 1."""
    for v, name in ((in_channels, "in_channels"), (out_channels, "out_channels"),
                    (groups, "groups")):
        if (isinstance(v, bool) and not allow_bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"`{name}` must be a positive int, got {v!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"`in_channels` ({in_channels}) and `out_channels` "
                         f"({out_channels}) must be divisible by `groups` ({groups})")


def conv_extra_repr(m, quantized=False):
    """The ``extra_repr`` of every convolution, float or quantized, 1-, 2- or 3-d,
    direct or transposed: the arguments that differ from their defaults, in PyTorch's
    order.  A quantized one shows its output qparams and no ``padding_mode``."""
    n = len(m.kernel_size)
    s = (f"{m.in_channels}, {m.out_channels}, kernel_size={m.kernel_size}, "
         f"stride={m.stride}")
    if quantized:
        s += f", scale={m.scale}, zero_point={m.zero_point}"
    if m.padding != (0,) * n:
        s += f", padding={m.padding}"
    if m.dilation != (1,) * n:
        s += f", dilation={m.dilation}"
    output_padding = getattr(m, "output_padding", None)
    if output_padding is not None and output_padding != (0,) * n:
        s += f", output_padding={output_padding}"
    if m.groups != 1:
        s += f", groups={m.groups}"
    if (m.bias() if quantized else m.bias) is None:
        s += ", bias=False"
    if not quantized and m.padding_mode != "zeros":
        s += f", padding_mode={m.padding_mode}"
    return s


def register_affine(m, affine, bias, shape):
    r"""Give the normalisation layer ``m`` its learnt ``weight`` :math:`\gamma` (ones) and
    ``bias`` :math:`\beta` (zeros) of ``shape`` when ``affine``, the weight alone when
    ``bias`` is False (torch >= 2.9), or neither (both registered as None)."""
    if affine:
        m.weight = Parameter(np.ones(shape, np.float32))
        if bias:
            m.bias = Parameter(np.zeros(shape, np.float32))
        else:
            m.register_parameter("bias", None)
    else:
        m.register_parameter("weight", None)
        m.register_parameter("bias", None)


def reset_affine(m):
    r"""``m.weight`` :math:`\gamma` to 1 and ``m.bias`` :math:`\beta` to 0 (those it has)."""
    if m.weight is not None:
        m.weight.data[...] = 1
    if m.bias is not None:
        m.bias.data[...] = 0
