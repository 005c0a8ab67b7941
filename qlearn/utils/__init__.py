"""Small helpers for training loops."""
from .progress import progress

__all__ = ["progress"]
