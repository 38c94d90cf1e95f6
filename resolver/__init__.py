"""The idres service: everything that listens, decides and calls out."""
