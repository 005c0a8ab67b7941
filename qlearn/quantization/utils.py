"""Small shared pieces of the workflow, as ``torch.ao.quantization.utils`` holds them:
the pattern type of the fusion tables, the wildcard :class:`MatchAllNode`,
:func:`get_combined_dict`, and the type alias :data:`ObserverOrFakeQuantize`.

PyTorch lists ``Pattern``, ``MatchAllNode`` and ``get_combined_dict`` in
``torch.ao.quantization.__all__`` but defines them only here (importing them from the
package fails there); qlearn defines them here and re-exports them from
:mod:`qlearn.quantization`, so both imports work.
"""
from collections.abc import Callable
from typing import Any

from .fake_quantize import FakeQuantizeBase
from .observer import ObserverBase

__all__ = ["Pattern", "MatchAllNode", "get_combined_dict", "ObserverOrFakeQuantize"]

#: A fusion or quantization pattern: one op (a module class or a function), a pair
#: ``(op, op)``, or the nested form ``(op, (op, op))`` read from the last op back.
Pattern = (Callable | tuple[Callable, Callable] | tuple[Callable, tuple[Callable, Callable]]
           | Any)

#: An observer or a fake quantizer: what a qconfig's ``activation()`` / ``weight()`` builds.
ObserverOrFakeQuantize = ObserverBase | FakeQuantizeBase


class MatchAllNode:
    """The wildcard of a pattern: it matches any op (a module class or function).

    :func:`~qlearn.quantization.get_fuser_method_new` looks a pattern up also with any
    of its ops replaced by ``MatchAllNode``, so a table entry
    ``(nn.ReLU, MatchAllNode)`` serves every "something, then ReLU".

    >>> from qlearn.quantization import MatchAllNode
    >>> MatchAllNode.__name__
    'MatchAllNode'
    """


def get_combined_dict(default_dict, additional_dict):
    """A new dict holding ``default_dict`` updated with ``additional_dict`` (whose
    entries win); neither argument is changed.

    Parameters
    ----------
    default_dict, additional_dict : dict

    Returns
    -------
    dict

    Examples
    --------
    >>> from qlearn.quantization import get_combined_dict
    >>> get_combined_dict({"a": 1, "b": 2}, {"b": 3})
    {'a': 1, 'b': 3}
    """
    for name, d in (("default_dict", default_dict), ("additional_dict", additional_dict)):
        if not isinstance(d, dict):
            raise TypeError(f"`{name}` must be a dict, got {type(d).__name__}")
    combined = dict(default_dict)
    combined.update(additional_dict)
    return combined
