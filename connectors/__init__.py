"""Connectors: one small interface to every external system, each with an HTTP sandbox.

Nothing in this package imports Django or `workbench`: a connector takes a config dict and a
cursor and returns plain canonical records, so it can be tested against its sandbox without a DB.
"""
