"""Transport-free types every room shares: who answers for a handle, callers and their rights, retries.

Imports only ``registry``.
"""
