"""Model-zoo names for the bundled configs and upstream's trained weights."""

from .model_zoo import get, get_checkpoint_url, get_config, get_config_file

__all__ = ["get", "get_checkpoint_url", "get_config", "get_config_file"]
