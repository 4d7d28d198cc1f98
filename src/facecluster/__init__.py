"""facecluster: turn a photo library into people."""

__version__ = "0.1.0"
