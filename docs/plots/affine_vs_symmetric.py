"""The figure of "Practical Quantization in PyTorch", made with qlearn: affine vs
symmetric ranges over a skewed activation and a normal weight.  docs/calibration.md calls
:func:`figure` in a code cell that runs during the docs build (matplotlib's inline
backend renders it with Agg)."""
import matplotlib.pyplot as plt
import numpy as np

import qlearn as ql
from qlearn.quantization.observer import MinMaxObserver

SCHEMES = {"affine": (ql.quint8, ql.per_tensor_affine),
           "symmetric": (ql.qint8, ql.per_tensor_symmetric)}


def quantized_range(data, scheme):
    """The real range [S (Q_min - Z), S (Q_max - Z)] a MinMaxObserver gives ``data``."""
    dtype, qscheme = SCHEMES[scheme]
    obs = MinMaxObserver(dtype=dtype, qscheme=qscheme)
    obs(data)
    (s,), (z,) = obs.calculate_qparams()
    return float(s) * (obs.quant_min - int(z)), float(s) * (obs.quant_max - int(z))


def plot(ax, data, scheme, title):
    counts, _, _ = ax.hist(data.ravel(), density=True, bins=100, color="tab:blue")
    ymin, ymax = np.quantile(counts[counts > 0], [0.25, 0.95])
    ax.vlines(quantized_range(data, scheme), ymin=ymin, ymax=ymax, colors="purple",
              linestyles="--")
    ax.set_title(title, fontsize=9)


def figure(random_state=0):
    """2 x 2 panels: activation (Pareto(1, 10)) and weight (N(0, 0.12)), each scheme."""
    rng = np.random.default_rng(random_state)
    act = (rng.pareto(10, (1, 1024)) + 1).astype(np.float32)       # Pareto(scale 1, alpha 10)
    weights = rng.normal(0, 0.12, (3, 64, 7, 7)).astype(np.float32)
    fig, axs = plt.subplots(2, 2, figsize=(8, 5.5))
    plot(axs[0, 0], act, "affine", "Activation, Affine-Quantized")
    plot(axs[0, 1], act, "symmetric", "Activation, Symmetric-Quantized")
    plot(axs[1, 0], weights, "affine", "Weights, Affine-Quantized")
    plot(axs[1, 1], weights, "symmetric", "Weights, Symmetric-Quantized")
    fig.tight_layout()
    return fig


def png(random_state=0, dpi=100):
    """The figure as PNG bytes (shown in the page with ``IPython.display.Image``)."""
    import io
    fig = figure(random_state)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


if __name__ == "__main__":   # standalone: render with Agg, no display needed
    import matplotlib
    matplotlib.use("Agg")
    figure().savefig("affine_vs_symmetric.png", dpi=100)
