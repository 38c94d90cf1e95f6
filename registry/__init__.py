"""The identifier registry: what is stored, how it is validated, signed and changed."""
