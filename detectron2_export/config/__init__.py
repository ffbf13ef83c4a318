"""detectron2's yacs config system: ``get_cfg()``, ``CfgNode`` and ``@configurable``."""

from .config import CfgNode, ConfigFileNotFoundError, ConfigKeyError, get_cfg
from .configurable import configurable

__all__ = ["CfgNode", "get_cfg", "configurable", "ConfigKeyError", "ConfigFileNotFoundError"]
