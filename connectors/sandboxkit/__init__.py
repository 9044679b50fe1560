"""The sandbox kit: fake vendor systems for development, tests and the demo (never the product).

`SANDBOXES` says which sandbox serves which connector kind; `manage.py sandbox <kind>` runs one.
"""

from __future__ import annotations

from importlib import import_module

# kind -> "module:Class" of its sandbox (a connectors.sandboxkit.kit.Sandbox).
SANDBOXES = {
    "business_central": "connectors.business_central.sandbox.server:BusinessCentralSandbox",
    "concur": "connectors.concur.sandbox.server:ConcurSandbox",
    "coupa": "connectors.coupa.sandbox.server:CoupaSandbox",
    "scim": "connectors.scim.sandbox.server:ScimSandbox",
    "servicenow": "connectors.servicenow.sandbox.server:ServiceNowSandbox",
}


def sandbox_class(kind: str):
    try:
        module, _, name = SANDBOXES[kind].partition(":")
    except KeyError:
        raise ValueError(f"no sandbox for {kind!r}; known: {', '.join(sorted(SANDBOXES))}") from None
    return getattr(import_module(module), name)
