"""The SCIM sandbox: a directory of Users with the enterprise extension, plus a console (see ``server.py``)."""
