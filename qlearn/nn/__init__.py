"""Float neural-network modules: ``qlearn.nn`` mirrors ``torch.nn``."""
from .modules import *  # noqa: F403
from .modules import __all__ as _modules_all
from .parameter import Parameter
from . import functional, init

__all__ = ["Parameter", "functional", "init"] + list(_modules_all)
