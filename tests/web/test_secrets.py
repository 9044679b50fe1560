"""Connection secrets: encrypted at rest, masked on screen, kept when the mask is left alone."""

import pytest
from django.db import connection as db

from sync.health import connector_for
from workbench.models import Connection
from workbench.secrets import MASK, unsealed

pytestmark = pytest.mark.django_db


def _raw_config(pk) -> str:
    with db.cursor() as cur:
        cur.execute("SELECT config FROM workbench_connection WHERE id = %s", [pk])
        return str(cur.fetchone()[0])


def test_a_secret_never_reaches_the_table_in_clear_and_the_connector_gets_it(monkeypatch):
    conn = Connection.objects.create(
        name="ERP",
        kind="business_central",
        role="erp",
        config={"base_url": "http://127.0.0.1:9", "client_id": "wb", "client_secret": "s3cr3t-value"},
    )
    raw = _raw_config(conn.pk)
    assert "s3cr3t-value" not in raw and "enc:" in raw and "http://127.0.0.1:9" in raw
    built = []
    monkeypatch.setattr("sync.health.registry.build", lambda kind, config: built.append(config))
    connector_for(conn)
    assert built[0]["client_secret"] == "s3cr3t-value"


def test_env_references_stay_references(monkeypatch):
    conn = Connection.objects.create(
        name="X", kind="scim", role="identity", config={"base_url": "http://h", "token": "env:SCIM_TOKEN"}
    )
    assert "env:SCIM_TOKEN" in _raw_config(conn.pk)


def test_the_admin_shows_the_mask_and_keeps_the_secret_when_it_is_left(admin_client):
    conn = Connection.objects.create(
        name="ERP", kind="business_central", role="erp", config={"base_url": "http://a", "client_secret": "keep-me"}
    )
    page = admin_client.get(f"/admin/workbench/connection/{conn.pk}/change/").content.decode()
    assert "keep-me" not in page and MASK in page and "enc:" not in page
    r = admin_client.post(
        f"/admin/workbench/connection/{conn.pk}/change/",
        {
            "name": "ERP",
            "kind": "business_central",
            "role": "erp",
            "config": f'{{"base_url": "http://b", "client_secret": "{MASK}"}}',
            "enabled": "on",
        },
    )
    assert r.status_code == 302
    conn.refresh_from_db()
    assert unsealed(conn.config) == {"base_url": "http://b", "client_secret": "keep-me"}
