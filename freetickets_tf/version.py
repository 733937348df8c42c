"""The library's version, kept apart so `setup.cfg` can read it without importing TensorFlow."""

__version__ = "0.1.0"
