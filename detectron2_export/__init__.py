"""detectron2-export: detectron2's deployment module (Caffe2 via ONNX, ONNX, TorchScript) on today's PyTorch."""

__version__ = "0.1.0"
