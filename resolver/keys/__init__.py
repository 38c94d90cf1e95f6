"""The node's keys: keyring on disk, the sealer that signs each record version, renewal, publication of
keys on the prefix records, certificates between nodes, and this node's site description.

Imports ``core`` and ``registry``.
"""
