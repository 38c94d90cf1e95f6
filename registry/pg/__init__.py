"""The registry on PostgreSQL (asyncpg): pool and error mapping, migrations, the store, the change feed, the embedded server.

Imports the pure modules of ``registry`` and asyncpg; never ``resolver`` or aiohttp.
"""
