"""An HTTP sandbox in the shape of the Business Central API v2.0 (see ``server.py``)."""
