"""Package version (single source: the installed distribution's metadata)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fiberscope")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"
