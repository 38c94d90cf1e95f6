"""Listening sockets shared by every worker of a node (SO_REUSEPORT), and the check that a port is ours."""

from __future__ import annotations

import socket

from registry.errors import ConfigurationError

BACKLOG = 1024


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound with SO_REUSEPORT, so that every worker can bind the same port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind the port for this node's workers; refuse a port another process (another node) holds,
    which SO_REUSEPORT alone would silently share."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        if port:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((host, port))
        return bind_socket(host, port)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def listening(host: str, port: int) -> socket.socket:
    """A bound, listening, non-blocking socket for one worker's listener."""
    sock = bind_socket(host, port)
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock
