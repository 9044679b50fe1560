"""SCIM 2.0 identity provider (Microsoft Entra ID provisions users this way).

- ``connector.py``  the Connector (read directory users as canonical employees incrementally, deactivate a user);
- ``mapping.py``    pure functions: SCIM User resources -> canonical ``employee``;
- ``sandbox/``      an HTTP sandbox in the SCIM 2.0 shape (RFC 7643/7644), with an HR offboarding control and a console.
"""
