"""The procurement pull keeps the supplier crosswalk: Coupa's suppliers against the ERP's vendor master,
both sandboxes real HTTP servers (in-thread), the jobs called as functions."""

from __future__ import annotations

import pytest

from connectors.coupa.sandbox.server import CoupaSandbox
from connectors.sandboxkit.kit import run_in_thread
from tests.conftest import SMALL_WORLD, TODAY
from tests.support.pipeline import run
from tests.support.sandboxes import p2p_connections
from workbench.models import ExceptionItem, MasterDataLink, Supplier

pytestmark = pytest.mark.django_db


@pytest.fixture
def coupa_sandbox():
    sandbox = CoupaSandbox(data_path=None, seed=7, today=TODAY, coupa_only_suppliers=True, **SMALL_WORLD)
    server, url = run_in_thread(sandbox)
    yield sandbox, url
    server.shutdown()


def test_the_procurement_pull_links_every_coupa_supplier_with_the_planted_outcomes(erp_sandbox, coupa_sandbox):  # noqa: F811
    erp, coupa = p2p_connections(erp_sandbox[1], coupa_sandbox[1])
    assert run(erp, "master_data").status == "succeeded"
    vendors = Supplier.objects.count()
    assert run(coupa, "procurement_pull").status == "succeeded"

    links = {link.external_id: link for link in MasterDataLink.objects.filter(object_type="supplier", system="coupa")}
    seeded = [d for d in coupa_sandbox[0].store.all("suppliers") if d["number"].startswith("V")]
    assert len(seeded) == vendors and len(links) == vendors + 4
    # Coupa's own copies of the ERP's vendors: confirmed by vendor number, nobody asked.
    assert all((links[str(d["id"])].status, links[str(d["id"])].code) == ("confirmed", d["number"]) for d in seeded)
    outcome = {k: (links[k].status, links[k].certainty, links[k].code) for k in ("4901", "4902", "4903", "4904")}
    assert outcome == {
        "4901": ("confirmed", "certain", "V10110"),  # the same VAT id, typed "de 134 976 973"
        "4902": ("proposed", "likely", "V10120"),  # "Adatum Gebaeudeservice" = "Adatum Gebäudeservice GmbH"
        "4903": ("proposed", "uncertain", "V10090"),  # "Kontoso Technik AG" in AT, the ERP's is German
        "4904": ("unmatched", "", ""),
    }
    assert links["4901"].iban and links["4903"].country == "AT"
    waiting = ExceptionItem.objects.filter(code="SUPPLIER_MATCH_UNCONFIRMED", status="open")
    assert sorted(i.detail["external_id"] for i in waiting) == ["4902", "4903", "4904"]
    assert all(i.connection == coupa for i in waiting)
    assert "countries differ: AT vs DE" in waiting.get(detail__external_id="4903").message

    # A second pull reads nothing new and changes nothing.
    before = list(MasterDataLink.objects.values_list("id", "status", "code", "updated_at").order_by("id"))
    assert run(coupa, "procurement_pull").status == "succeeded"
    assert list(MasterDataLink.objects.values_list("id", "status", "code", "updated_at").order_by("id")) == before
    assert ExceptionItem.objects.filter(code="SUPPLIER_MATCH_UNCONFIRMED").count() == 3


def test_a_tax_id_edited_in_coupa_for_a_linked_supplier_is_held_as_a_conflict(erp_sandbox, coupa_sandbox, admin_user):  # noqa: F811
    import requests

    from workbench.services.supplier_links import supplier_link_confirm

    erp, coupa = p2p_connections(erp_sandbox[1], coupa_sandbox[1])
    assert run(erp, "master_data").status == "succeeded"
    assert run(coupa, "procurement_pull").status == "succeeded"
    link = MasterDataLink.objects.get(object_type="supplier", system="coupa", external_id="4902")
    supplier_link_confirm(link=link, actor=admin_user)  # "Adatum Gebaeudeservice" is V10120
    erp_tax_id = Supplier.objects.get(code="V10120", entity__code="NW-DE").tax_id

    # A buyer types another company's VAT id into Coupa (Coupa's supplier API: PUT /api/suppliers/:id).
    token = requests.post(
        f"{coupa_sandbox[1]}/oauth2/token",
        timeout=5,
        data={
            "grant_type": "client_credentials",
            "client_id": "workbench",
            "client_secret": "sandbox-secret",
            "scope": "core.supplier.read core.supplier.write",
        },
    ).json()["access_token"]
    resp = requests.put(
        f"{coupa_sandbox[1]}/api/suppliers/4902",
        json={"tax-id": "DE 134 976 973"},
        timeout=5,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    assert resp.status_code == 200, resp.text
    assert run(coupa, "procurement_pull").status == "succeeded"

    conflict = ExceptionItem.objects.get(code="OWNERSHIP_CONFLICT", status="open")
    assert (conflict.detail["code"], conflict.detail["incoming"], conflict.detail["current"]) == (
        "V10120",
        "DE 134 976 973",
        erp_tax_id,
    )
    assert Supplier.objects.get(code="V10120", entity__code="NW-DE").tax_id == erp_tax_id  # the ERP's stays
    assert MasterDataLink.objects.get(pk=link.pk).code == "V10120"  # and so does the person's link
