"""Containers: ``Sequential`` and ``ModuleList``."""
from collections import OrderedDict

from .module import Module

__all__ = ["Sequential", "ModuleList"]


class Sequential(Module):
    r"""Modules applied in order: :math:`y = f_n(\dots f_2(f_1(x)))`.

    Children are named ``"0"``, ``"1"``, ... or by the keys of an ``OrderedDict``.

    >>> from qlearn import nn
    >>> m = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    >>> m(np.ones((2, 4))).shape, len(m), type(m[1]).__name__
    ((2, 3), 2, 'ReLU')
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return Sequential(OrderedDict(list(self._modules.items())[idx]))
        return self._modules[self._key(idx)]

    def __setitem__(self, idx, module):
        setattr(self, self._key(idx), module)

    def __delitem__(self, idx):
        keys = list(self._modules)[idx] if isinstance(idx, slice) else [self._key(idx)]
        for k in keys:
            delattr(self, k)

    def _key(self, idx):
        keys = list(self._modules)
        if not isinstance(idx, int) or not -len(keys) <= idx < len(keys):
            raise IndexError(f"index {idx!r} is out of range for a Sequential of length "
                             f"{len(keys)}")
        return keys[idx]

    def append(self, module):
        """Add ``module`` at the end (named by its index); returns ``self``."""
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules, registered as children ``"0"``, ``"1"``, ...

    >>> from qlearn import nn
    >>> layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    >>> len(layers), len(list(layers.parameters()))
    (3, 6)
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[self._key(idx)]

    def __setitem__(self, idx, module):
        setattr(self, self._key(idx), module)

    def _key(self, idx):
        n = len(self._modules)
        if not isinstance(idx, int) or not -n <= idx < n:
            raise IndexError(f"index {idx!r} is out of range for a ModuleList of length {n}")
        return str(idx % n)

    def append(self, module):
        """Add ``module`` at the end (named by its index); returns ``self``."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        """Append every module of the iterable ``modules``; returns ``self``."""
        for m in modules:
            self.append(m)
        return self

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(); iterate over it")
