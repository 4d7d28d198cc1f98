"""Command-line interface: a thin layer over the library (:mod:`facecluster.api`) that
parses options, calls it, renders what it returns and maps errors to exit codes. Heavy
libraries are imported inside commands so ``--help`` stays instant."""

import importlib

from .app import app, main

# Each command module registers its commands on ``app``; this order is --help's order.
for _module in ("scan", "group", "people", "xmp", "search", "train", "models"):
    importlib.import_module(f".{_module}", __name__)

__all__ = ["app", "main"]
