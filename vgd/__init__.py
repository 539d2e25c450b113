"""vgd: voice gender detection from speech with a log-mel CNN."""

__version__ = "0.1.0"
