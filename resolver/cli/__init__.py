"""The ``idres`` command line: it sits on top and may import every room.

``idres = resolver.cli:main`` (and ``python -m resolver``).
"""

from .main import main

__all__ = ["main"]
