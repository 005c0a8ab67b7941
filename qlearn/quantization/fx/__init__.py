"""The passes behind :mod:`qlearn.quantization.quantize_fx`: the node kinds
(:mod:`.patterns`), fusion (:mod:`.fuse`), qconfig assignment and observer insertion
(:mod:`.prepare`) and conversion (:mod:`.convert`)."""
from .convert import convert_graph_module
from .fuse import fuse_graph_module
from .patterns import node_kind
from .prepare import assign_qconfigs, insert_observers, is_dynamic_qconfig, swap_qat_modules

__all__ = ["convert_graph_module", "fuse_graph_module", "node_kind", "assign_qconfigs",
           "insert_observers", "is_dynamic_qconfig", "swap_qat_modules"]
