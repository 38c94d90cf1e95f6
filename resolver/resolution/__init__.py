"""Resolution: the engine, its cache (TTL + LRU, negative entries, single flight, expired entries kept
for serving stale) and the change-log follower that keeps the cache coherent.

Imports ``core`` and ``registry``; no aiohttp, and asyncpg only for the follower's LISTEN connection.
"""
