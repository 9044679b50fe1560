"""The Coupa sandbox: REST API for the P2P objects, OAuth or API key, Call Outs (see ``server.py``)."""
