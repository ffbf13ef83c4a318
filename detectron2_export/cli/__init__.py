"""Command-line tools: ``caffe2_converter`` (detectron2 v0.3's documented CLI) and ``export_model``."""
