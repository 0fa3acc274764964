"""mlkit: shared library and CLI of mlops-kit."""

__version__ = "0.1.0"
