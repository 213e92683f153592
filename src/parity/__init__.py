"""parity: does an inference provider really serve the open-weight model it sells?"""

__version__ = "0.1.0"
