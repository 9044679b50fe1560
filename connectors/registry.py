"""Which connector class serves which kind; sync builds connectors only through here.

Sandboxes are not listed here: they are a development tool (connectors/sandboxkit/), outside the
product's import graph."""

from __future__ import annotations

from importlib import import_module

# kind -> "module:Class". Lazy, so that importing the registry costs nothing.
CONNECTORS = {
    "business_central": "connectors.business_central.connector:BusinessCentralConnector",
    "concur": "connectors.concur.connector:ConcurConnector",
    "coupa": "connectors.coupa.connector:CoupaConnector",
    "scim": "connectors.scim.connector:ScimConnector",
    "servicenow": "connectors.servicenow.connector:ServiceNowConnector",
}


def _load(path: str):
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


def connector_class(kind: str):
    try:
        return _load(CONNECTORS[kind])
    except KeyError:
        raise ValueError(f"unknown connector kind {kind!r}; known: {', '.join(sorted(CONNECTORS))}") from None


def build(kind: str, config: dict):
    return connector_class(kind)(config)
