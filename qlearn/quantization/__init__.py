"""Quantization: observers, qconfig, fake quantization and the eager workflow."""
from .observer import (FixedQParamsObserver, HistogramObserver, MinMaxObserver,
                       MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver,
                       NoopObserver, ObserverBase, PerChannelMinMaxObserver,
                       PlaceholderObserver, RecordingObserver, ReuseInputObserver,
                       default_debug_observer, default_dynamic_quant_observer,
                       default_float_qparams_observer, default_float_qparams_observer_4bit,
                       default_histogram_observer, default_observer,
                       default_per_channel_weight_observer, default_placeholder_observer,
                       default_weight_observer)
from .calibrators import EntropyObserver, MSEObserver, PercentileObserver
from .qconfig import (QConfig, QConfigDynamic, default_dynamic_qconfig,
                      default_per_channel_qconfig, default_qconfig, float16_dynamic_qconfig,
                      float_qparams_weight_only_qconfig,
                      float_qparams_weight_only_qconfig_4bit,
                      float16_static_qconfig, get_default_qat_qconfig,
                      get_default_qconfig, per_channel_dynamic_qconfig)
from .qparams import calculate_qmin_qmax, calculate_qparams
from .fake_quantize import (FakeQuantize, FakeQuantizeBase, FixedQParamsFakeQuantize,
                            FusedMovingAvgObsFakeQuantize, LearnableFakeQuantize,
                            default_fake_quant, default_fused_act_fake_quant,
                            default_fused_per_channel_wt_fake_quant,
                            default_fused_wt_fake_quant, default_histogram_fake_quant,
                            default_per_channel_weight_fake_quant, default_weight_fake_quant,
                            disable_fake_quant, disable_observer, enable_fake_quant,
                            enable_observer)
from .fuser_method_mappings import (fuse_conv_bn, fuse_conv_bn_relu, fuse_convtranspose_bn,
                                    fuse_linear_bn, get_default_fusion_patterns,
                                    get_fuser_method, get_fuser_method_new)
from .fuse_modules import fuse_known_modules, fuse_modules, fuse_modules_qat
from ..nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval
from .stubs import DeQuantStub, QuantStub, QuantWrapper
from .quantization_mappings import (get_default_compare_output_module_list,
                                    get_default_dynamic_quant_module_mappings,
                                    get_default_float_to_quantized_operator_mappings,
                                    get_default_qat_module_mappings,
                                    get_default_qconfig_propagation_list,
                                    get_default_static_quant_module_mappings,
                                    get_dynamic_quant_module_class,
                                    get_default_static_quant_reference_module_mappings,
                                    get_embedding_qat_module_mappings,
                                    get_embedding_static_quant_module_mappings,
                                    get_quantized_operator,
                                    get_static_quant_module_class, no_observer_set)
from .quantize import (add_quant_dequant, convert, default_eval_fn, get_observer_dict,
                       prepare, prepare_qat, propagate_qconfig_, quantize, quantize_dynamic,
                       quantize_qat, swap_module)
from .qconfig_mapping import (QConfigMapping, get_default_qat_qconfig_mapping,
                              get_default_qconfig_mapping)
# the rest of torch.ao.quantization's names that qlearn has (the QAT qconfigs are built
# from the fake-quantize factories, so they come after those)
from .observer import (UniformQuantizationObserverBase,  # noqa: E402
                       default_fixed_qparams_range_0to1_observer,
                       default_fixed_qparams_range_neg1to1_observer,
                       default_reuse_input_observer,
                       per_channel_weight_observer_range_neg_127_to_127,
                       weight_observer_range_neg_127_to_127)
from .fake_quantize import (default_dynamic_fake_quant,  # noqa: E402
                            default_fixed_qparams_range_0to1_fake_quant,
                            default_fixed_qparams_range_neg1to1_fake_quant,
                            fused_per_channel_wt_fake_quant_range_neg_127_to_127,
                            fused_wt_fake_quant_range_neg_127_to_127)
from .qconfig import (default_debug_qconfig, default_dynamic_qat_qconfig,  # noqa: E402
                      default_per_channel_symmetric_qnnpack_qat_qconfig,
                      default_per_channel_symmetric_qnnpack_qconfig, default_qat_qconfig,
                      default_qat_qconfig_v2, default_quint8_weight_qconfig,
                      default_reuse_input_qconfig, default_symmetric_qnnpack_qat_qconfig,
                      default_symmetric_qnnpack_qconfig, qconfig_equals)
from .observer import (default_affine_fixed_qparams_observer,  # noqa: E402
                       default_symmetric_fixed_qparams_observer, get_observer_state_dict,
                       load_observer_state_dict)
from .fake_quantize import (default_affine_fixed_qparams_fake_quant,  # noqa: E402
                            default_embedding_fake_quant,
                            default_symmetric_fixed_qparams_fake_quant)
from .qconfig import (QConfigAny, get_default_qat_qconfig_dict,  # noqa: E402
                      get_default_qconfig_dict)
from .quant_type import QuantType  # noqa: E402
from .utils import (MatchAllNode, ObserverOrFakeQuantize, Pattern,  # noqa: E402
                    get_combined_dict)
from .quantize import get_default_custom_config_dict  # noqa: E402
