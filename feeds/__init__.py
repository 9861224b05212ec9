"""seedfeeds' pure pipeline: seed folder -> records -> entries -> feeds -> snapshot.

No Flask, no sockets, no clock, no globals: the same seeds and config give
the same bytes.
"""

from .builder import Builder, build_snapshot
from .config import Config, load_config
from .errors import ConfigError

__all__ = ["Builder", "Config", "ConfigError", "build_snapshot", "load_config"]
