"""Graph passes over Caffe2 NetDefs, applied in ``PIPELINE`` order by ``run_passes`` (SPEC 4.3, 4.4)."""

from .assign_device_option import assign_device_option
from .construct_init_net_from_params import Int8Tensor, construct_init_net_from_params, create_const_fill_op
from .fuse_alias_placeholder import fuse_alias_placeholder
from .fuse_copy_between_cpu_and_gpu import fuse_copy_between_cpu_and_gpu
from .get_params_from_init_net import get_params_from_init_net
from .group_norm_replace_aten_with_caffe2 import group_norm_replace_aten_with_caffe2
from .infer_device_type import infer_device_type
from .pipeline import PIPELINE, PassState, PipelineStep, op_stats, run_passes
from .remove_dead_end_ops import remove_dead_end_ops
from .remove_reshape_for_fc import identify_reshape_sub_graph, remove_reshape_for_fc
from .ssa import get_consumer_map, get_producer_map, get_ssa, rename_op_input, rename_op_output

__all__ = [
    "PIPELINE",
    "Int8Tensor",
    "PassState",
    "PipelineStep",
    "assign_device_option",
    "construct_init_net_from_params",
    "create_const_fill_op",
    "fuse_alias_placeholder",
    "fuse_copy_between_cpu_and_gpu",
    "get_consumer_map",
    "get_params_from_init_net",
    "get_producer_map",
    "get_ssa",
    "group_norm_replace_aten_with_caffe2",
    "identify_reshape_sub_graph",
    "infer_device_type",
    "op_stats",
    "remove_dead_end_ops",
    "remove_reshape_for_fc",
    "rename_op_input",
    "rename_op_output",
    "run_passes",
]
