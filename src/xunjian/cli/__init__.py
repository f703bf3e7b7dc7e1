"""The ``xunjian`` command. Sub-commands live in one module each and register themselves."""

from xunjian.cli.app import app, main

__all__ = ["app", "main"]
