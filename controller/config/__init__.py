"""Configuration: validated models of configs/ and the loader that reads them once at start."""

from controller.config.loader import ConfigError, FleetConfig, default_config_dir, load_config

__all__ = ["ConfigError", "FleetConfig", "default_config_dir", "load_config"]
