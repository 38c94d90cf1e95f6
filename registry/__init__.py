"""The identifier registry: what is stored, how it is encoded, validated, signed and read.

The modules at this level are pure (no asyncpg, aiohttp, clock or environment; time is passed in), so
clients and tests can use them alone. ``registry.pg`` holds everything that talks to PostgreSQL.
Nothing here imports ``resolver``.
"""
