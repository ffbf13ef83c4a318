"""The project's exception hierarchy.

Every error says where it happened, which field was wrong, what it got and what was expected:
``"<where>: <field>=<got>, expected <form>"``. Where detectron2 / Caffe2 prescribe a built-in type
(KeyError for a missing registry entry, NotImplementedError for an unsupported node...), the class
inherits from it as well so that both ``except`` clauses work.
"""

from __future__ import annotations


class Detectron2ExportError(Exception):
    """Base class of every error raised on purpose by detectron2_export."""


class ConfigError(Detectron2ExportError, ValueError):
    """A config file or key is missing, malformed or has a value of the wrong type."""


class CheckpointError(Detectron2ExportError, ValueError):
    """A checkpoint file is missing, corrupt, unsafe to unpickle, or does not fit the model."""


class DatasetError(Detectron2ExportError, ValueError):
    """A dataset is not registered, or its files are missing."""


class ExportError(Detectron2ExportError, RuntimeError):
    """A model cannot be exported (unsupported architecture, training mode, batch size...)."""


class UnsupportedOnnxNodeError(Detectron2ExportError, NotImplementedError):
    """The ONNX -> Caffe2 converter has no rule for a node."""


class IllegalGraphTransformError(Detectron2ExportError, ValueError):
    """A graph pass was asked to do something that would change what the net computes."""


class UnknownOperatorError(Detectron2ExportError, KeyError):
    """A NetDef names an operator type the runtime does not implement."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class OperatorArgumentError(Detectron2ExportError, ValueError):
    """An OperatorDef argument is unknown, missing or out of range."""


class OperatorInputError(Detectron2ExportError, ValueError):
    """An operator got an input blob of the wrong rank, shape or dtype, or a missing blob."""


class ProtobufError(Detectron2ExportError, ValueError):
    """A .pb / .pbtxt file cannot be parsed as the expected Caffe2 message."""


class DistributedError(Detectron2ExportError, RuntimeError):
    """A multi-process run failed: a worker died or raised, or a rank could not join the process group."""


class ResourceLimitError(Detectron2ExportError, MemoryError):
    """An input or file asks for more memory than the configured limit, refused before allocating it."""


class ExportAssertionError(ExportError, AssertionError):
    """A check that detectron2's export code makes with ``assert`` (evaluation mode, input types, a
    weight it cannot express...). Raised even under ``python -O``; an AssertionError too, so upstream
    callers that catch one keep working."""


class ModelInputError(Detectron2ExportError, AssertionError):
    """A model part got inputs or a mode it cannot run with (detectron2 asserts these; an
    AssertionError too, so upstream callers that catch one keep working)."""
