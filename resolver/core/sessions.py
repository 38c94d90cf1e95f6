"""Authentication sessions (handle-http-api.md §6.3–§6.4): a challenge nonce, then the identity that
answered it; kept in the store (``registry.pg.sessions``) so that whichever process a request reaches
knows the session. A session lives ``timeout`` seconds after its last use."""

from __future__ import annotations

import base64
import secrets
import time
from typing import Callable

from registry.model import ValueRef
from registry.pg import sessions as rows
from registry.pg.sessions import SessionRow

NONCE_BYTES = 16


class Sessions:
    def __init__(self, pool, timeout: int, clock: Callable[[], float] = time.time) -> None:
        self._pool = pool
        self.timeout = timeout
        self._clock = clock

    async def open(self) -> SessionRow:
        """A new, unauthenticated session with a fresh challenge."""
        session_id = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")
        nonce = secrets.token_bytes(NONCE_BYTES)
        await rows.create(self._pool, session_id, nonce, self.timeout)
        return SessionRow(session_id, nonce, None, self._clock() + self.timeout)

    async def get(self, session_id: str) -> SessionRow | None:
        """The live session, its lifetime renewed once half of it has passed; None if unknown or expired."""
        session = await rows.get(self._pool, session_id)
        if session is not None and session.expires_at - self._clock() < self.timeout / 2:
            await rows.touch(self._pool, session_id, self.timeout)
        return session

    async def authenticated(self, session_id: str, identity: ValueRef) -> bool:
        return await rows.authenticate(self._pool, session_id, str(identity), self.timeout)

    async def close(self, session_id: str) -> bool:
        return await rows.delete(self._pool, session_id)


def identity_of(session: SessionRow | None) -> ValueRef | None:
    if session is None or session.identity is None:
        return None
    return ValueRef.parse(session.identity)
