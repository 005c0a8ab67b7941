"""Fused modules (``qlearn.nn.intrinsic`` mirrors ``torch.ao.nn.intrinsic``)."""
