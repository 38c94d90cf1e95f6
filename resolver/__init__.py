"""The idres service: everything that listens, decides and calls out."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version


def version() -> str:
    """The installed idres version ("unknown" when run from a tree that was never installed)."""
    try:
        return _distribution_version("idres")
    except PackageNotFoundError:
        return "unknown"
