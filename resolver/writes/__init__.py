"""Writes: the registrar (authorised single writes, listing, homing prefixes); later the batch path.

Imports ``core``, ``registry`` and ``resolution`` (to evict what it wrote from the cache), never a transport.
"""
