"""The batch-norm state shared by the QAT layer + BN modules (conv-bn and linear-bn)."""

__all__ = ["BnStateMixin"]


class BnStateMixin:
    """``freeze_bn_stats`` / ``update_bn_stats`` and the training mode that respects them,
    for a module whose batch norm is its ``bn`` child (PyTorch's ``_ConvBnNd`` and
    ``LinearBn1d`` define the same methods)."""

    def _start_bn_state(self, freeze_bn):
        """Update or freeze the statistics as the constructor's ``freeze_bn`` says."""
        if self.training and not freeze_bn:
            self.update_bn_stats()
        else:
            self.freeze_bn_stats()

    def reset_running_stats(self):
        """Reset the batch norm's running mean and variance (and batch count)."""
        self.bn.reset_running_stats()

    def update_bn_stats(self):
        """Let the batch norm normalise with batch statistics and update its running ones
        (in training mode); returns ``self``."""
        self.freeze_bn = False
        self.bn.training = True
        return self

    def freeze_bn_stats(self):
        """Make the batch norm use (and keep) its running statistics, also in training
        mode: the forward pass is then exactly the folded layer's.  Returns ``self``."""
        self.freeze_bn = True
        self.bn.training = False
        return self

    def train(self, mode=True):
        """Set the training mode; a frozen batch norm stays in eval mode."""
        if not isinstance(mode, bool):
            raise TypeError(f"`mode` must be a bool, got {mode!r}")
        object.__setattr__(self, "training", mode)
        if not self.freeze_bn:
            for child in self.children():
                child.train(mode)
        return self
