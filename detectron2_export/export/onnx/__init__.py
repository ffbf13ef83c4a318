"""Standard ONNX export: the whole inference of a detectron2 model (pre-processing, backbone, RPN,
pooling, post-processing) as default-domain ONNX operators without Loop/If, for any batch and image
size, and :class:`OnnxRuntimeModel` to run it with detectron2's inputs and outputs.

Where each step is lowered: ``preprocess.py`` (normalise, pad), ``anchors.py``, ``proposals.py``
(RPN), ``poolers.py`` (multi-level RoIAlign), ``detections.py`` (box head post-processing),
``dense.py`` (RetinaNet), ``nms.py`` (grouped NMS + top-k), ``masks.py`` (class selection, pasting),
``semantic.py`` (semantic logits to output size), ``postprocess.py`` (rescale to output size),
``ops/`` (the hand-emitted ONNX nodes), ``meta_arch.py`` (one lowered model per meta-architecture),
``deconv.py`` (the mask head's deconvolution as Conv + DepthToSpace, for int8). ``quantize.py``: int8 (QDQ)
of the network part; ``profiling.py``: onnxruntime's time per operator type and conv GFLOP/s.
"""

from .export import export_onnx
from .runtime import OnnxRuntimeModel

__all__ = ["export_onnx", "OnnxRuntimeModel"]
