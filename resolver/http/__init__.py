"""The HTTP front: the aiohttp application and its handlers (thin: parse, call, render), TLS, and signed
HTTP answers.

Imports ``core``, ``resolution``, ``writes``, ``keys`` and ``registry``; never ``serving`` (which hands
it the node), ``ops`` or another transport. Only ``http`` and ``serving`` import aiohttp's server side.
"""
