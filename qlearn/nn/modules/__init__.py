"""Float modules (layers, containers, losses)."""
from .module import Module, RemovableHandle

__all__ = ["Module", "RemovableHandle"]
