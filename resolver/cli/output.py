"""What commands print: text for people, one JSON line with ``--json``, errors on stderr; the exit codes.

Exit codes: 0 success · 1 the node or registry refused (not found, exists, not allowed) · 2 bad usage
or input · 3 the node or database cannot be reached · 4 configuration or schema problem.
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_CONFIG = 0, 1, 2, 3, 4


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, data: dict[str, Any], text: str) -> None:
        print(orjson.dumps(data).decode() if self.as_json else text, flush=True)

    def error(self, message: str, code: int) -> int:
        if self.as_json:
            print(orjson.dumps({"error": message, "exitCode": code}).decode(), flush=True)
        print(f"idres: {message}", file=sys.stderr, flush=True)
        return code
