"""detectron2's config systems: yacs (``get_cfg()``, ``CfgNode``, ``@configurable``) and LazyConfig
(``LazyConfig``, ``LazyCall``, ``instantiate``)."""

from .compat import downgrade_config, upgrade_config
from .config import CfgNode, ConfigFileNotFoundError, ConfigKeyError, get_cfg
from .configurable import configurable
from .instantiate import instantiate
from .lazy import LazyCall, LazyConfig

__all__ = [
    "CfgNode",
    "get_cfg",
    "configurable",
    "ConfigKeyError",
    "ConfigFileNotFoundError",
    "LazyCall",
    "LazyConfig",
    "instantiate",
    "upgrade_config",
    "downgrade_config",
]
