"""What operators run against a data directory or DSN: provisioning of prefixes and admins, the bootstrap
of a node's database and keys, the demo data set.

Imports ``core``, ``keys`` and ``registry``; never a transport.
"""
