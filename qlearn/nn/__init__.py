"""Float neural-network modules: ``qlearn.nn`` mirrors ``torch.nn``."""
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all
from .parameter import Parameter
from . import functional, init  # noqa: E402  (nn.functional, nn.init)

__all__ = ["Parameter"] + list(_modules_all)
