"""Sandbox credentials and connections the tests use (the sandboxes accept these credentials)."""

CREDS = {"client_id": "workbench", "client_secret": "sandbox-secret", "timeout": 5}


def p2p_connections(erp_url: str, coupa_url: str):
    """The ERP and procurement-suite connections of the procure-to-pay tests (in-thread sandboxes)."""
    from workbench.models import Connection

    erp = Connection.objects.create(
        name="Business Central (ERP)",
        kind="business_central",
        role="erp",
        config={"base_url": erp_url, "environment": "sandbox", **CREDS},
    )
    coupa = Connection.objects.create(
        name="Coupa", kind="coupa", role="procurement", config={"base_url": coupa_url, **CREDS}
    )
    return erp, coupa
