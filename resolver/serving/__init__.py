"""Serving: the supervisor and its worker processes, their sockets, and the wiring of one process's
objects (``Node``) with their lifecycle.

Wires every room; starts the transports' listeners. ``node.py`` imports no aiohttp.
"""
