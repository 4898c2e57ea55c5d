"""gati SDK version.

The release tool rewrites the line below; a line such as
__version__ = "0.0.0"
inside this docstring is documentation, not the version.
"""

from __future__ import annotations

__all__ = ["__version__", "version_info"]

# Bumped by `hoist release`; keep the single quotes.
__version__: str = '1.2.3'  # do not edit by hand


def version_info() -> tuple[int, ...]:
    """The version as numbers: compares with tuples."""
    return tuple(int(part) for part in __version__.split("-")[0].split("."))
