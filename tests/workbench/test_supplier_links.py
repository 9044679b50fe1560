"""The supplier crosswalk: matching external suppliers to ERP vendors, a person's decisions, and the screen."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from workbench.models import Document, ExceptionItem, LegalEntity, MasterDataLink, Supplier
from workbench.selectors.suppliers import match_fingerprint as fingerprint
from workbench.selectors.suppliers import supplier_code_for
from workbench.services.p2p_documents import p2p_documents_upsert
from workbench.services.supplier_links import supplier_link_confirm, supplier_link_reject, supplier_links_refresh

pytestmark = pytest.mark.django_db
SCREEN = "/masterdata/suppliers/"
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "link-1"}


@pytest.fixture
def erp():
    """The ERP's vendor master: two German vendors with valid VAT ids, a US one with an EIN."""
    de = LegalEntity.objects.create(code="NW-DE", name="Northwind Handels GmbH", currency="EUR")
    us = LegalEntity.objects.create(code="NW-US", name="Northwind Traders Inc.", currency="USD")
    Supplier.objects.create(entity=de, code="V00012", name="Müller Gebäudetechnik GmbH", tax_id="DE136695976")
    Supplier.objects.create(entity=de, code="V00034", name="Kontoso Technik GmbH", tax_id="DE132882398")
    Supplier.objects.create(entity=us, code="V00056", name="Contoso Hardware LLC", tax_id="12-3456789")
    return {"NW-DE": de, "NW-US": us}


def coupa(external_id, name, number="", tax_id="", country="", iban=""):
    return {
        "external_id": external_id,
        "number": number,
        "name": name,
        "tax_id": tax_id,
        "country": country,
        "iban": iban,
        "status": "active",
    }


def link_of(external_id, system="coupa") -> MasterDataLink:
    return MasterDataLink.objects.get(object_type="supplier", system=system, external_id=external_id)


def item_of(external_id, system="coupa") -> ExceptionItem | None:
    return ExceptionItem.objects.filter(fingerprint=fingerprint(system, external_id)).first()


# --- matching outcomes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record, status, certainty, code",
    [
        # The ERP's vendor number with the same tax id (typed with a prefix): confirmed by key.
        (
            coupa("1", "Contoso Hardware", number="V00056", tax_id="US 12-3456789", country="US"),
            "confirmed",
            "certain",
            "V00056",
        ),
        # No number, the VAT id typed with spaces in lower case: a certain match by tax id.
        (
            coupa("2", "Mueller Haustechnik Deutschland", tax_id="de 136 695 976", country="DE"),
            "confirmed",
            "certain",
            "V00012",
        ),
        # The same name spelled with "ae/ue" and without the legal form, no tax id: waits for a person.
        (coupa("3", "Mueller Gebaeudetechnik", number="C-77", country="DE"), "proposed", "likely", "V00012"),
        # The same name with another legal form in another country: uncertain, waits for a person.
        (coupa("4", "Kontoso Technik AG", number="C-78", country="AT"), "proposed", "uncertain", "V00034"),
        # Nobody the ERP knows.
        (
            coupa("5", "Globex Industrial Supplies Inc.", number="C-79", tax_id="98-7654321", country="US"),
            "unmatched",
            "",
            "",
        ),
        # The ERP's number but a conflicting VAT id: not linked by key; nothing else matches.
        (
            coupa("6", "Someone Else GmbH", number="V00012", tax_id="DE132882398", country="DE"),
            "confirmed",
            "certain",
            "V00034",
        ),
    ],
)
def test_each_external_supplier_gets_the_outcome_its_evidence_supports(erp, record, status, certainty, code):
    counts = supplier_links_refresh(system="coupa", records=[record])
    link = link_of(record["external_id"])
    assert (link.status, link.certainty, link.code) == (status, certainty, code), link.reasons
    assert counts[status] == 1 and counts["created"] == 1
    item = item_of(record["external_id"])
    if status == "confirmed":
        assert item is None and link.decided_by is None
    else:
        assert item is not None and item.status == "open" and item.code == "SUPPLIER_MATCH_UNCONFIRMED"
        assert item.detail["link"] == link.pk and record["name"] in item.message


def test_the_crosswalk_reads_a_country_as_the_matcher_does(erp):
    """ "UK" is Great Britain for the matcher; the link keeps the same reading (one country reading)."""
    supplier_links_refresh(
        system="coupa",
        records=[coupa("90", "Fabrikam Ltd", country=" uk "), coupa("91", "Fabrikam Hellas", country="EL")],
    )
    assert (link_of("90").country, link_of("91").country) == ("GB", "GR")


def test_the_message_names_both_suppliers_and_the_evidence(erp):
    supplier_links_refresh(
        system="coupa",
        records=[
            coupa("3", "Mueller Gebaeudetechnik", number="C-77", country="DE"),
            coupa("5", "Globex Industrial", number="C-79"),
        ],
    )
    assert item_of("3").message == (
        "Coupa supplier 'Mueller Gebaeudetechnik' (number C-77, no tax id, DE) may be ERP "
        "vendor V00012 'Müller Gebäudetechnik GmbH' (NW-DE): same name; confirm or pick another."
    )
    assert item_of("3").entity_id == erp["NW-DE"].pk
    assert "no ERP vendor found" in item_of("5").message


def test_a_refresh_of_the_same_records_changes_nothing(erp, django_assert_max_num_queries):
    records = [coupa("3", "Mueller Gebaeudetechnik", number="C-77", country="DE"), coupa("5", "Globex Industrial")]
    supplier_links_refresh(system="coupa", records=records)
    before = list(ExceptionItem.objects.values_list("pk", "message", "status", "updated_at"))
    with django_assert_max_num_queries(5):  # savepoint, vendors, links, items, release
        counts = supplier_links_refresh(system="coupa", records=records)
    assert counts["unchanged"] == 2 and counts["created"] == counts["updated"] == counts["items_raised"] == 0
    assert list(ExceptionItem.objects.values_list("pk", "message", "status", "updated_at")) == before


def test_new_evidence_settles_a_waiting_link_and_resolves_its_item(erp):
    supplier_links_refresh(system="coupa", records=[coupa("5", "Mueller GT", number="C-79")])
    assert link_of("5").status == "unmatched" and item_of("5").status == "open"
    supplier_links_refresh(system="coupa", records=[coupa("5", "Mueller GT", number="C-79", tax_id="DE 136695976")])
    assert (link_of("5").status, link_of("5").code) == ("confirmed", "V00012")
    item = item_of("5")
    assert item.status == "resolved" and item.events.last().action == "matched"


def test_duplicates_in_the_external_system_each_find_the_vendor(erp):
    supplier_links_refresh(
        system="coupa",
        records=[
            coupa("7", "Müller Gebäudetechnik", tax_id="DE136695976"),
            coupa("8", "Mueller GT (old)", tax_id="DE 136 695 976"),
            coupa("9", "Mueller Gebaeudetechnik", number="C-9", country="DE"),
        ],
    )
    assert [(link_of(x).status, link_of(x).code) for x in ("7", "8", "9")] == [
        ("confirmed", "V00012"),
        ("confirmed", "V00012"),
        ("proposed", "V00012"),
    ]
    assert "may be ERP vendor V00012" in item_of("9").message


def test_a_large_page_is_matched_with_a_few_queries(erp, django_assert_max_num_queries):
    de = erp["NW-DE"]
    Supplier.objects.bulk_create(
        [Supplier(entity=de, code=f"V9{i:04d}", name=f"Lieferant {i} Handel GmbH") for i in range(1500)]
    )
    records = [coupa(f"X{i}", f"Lieferant {i} Handel", number=f"C{i}") for i in range(0, 3000, 2)]
    # Bulk writes: SQLite takes ~40 rows per INSERT (999 parameters), PostgreSQL 500; never a query per record.
    with django_assert_max_num_queries(100):
        counts = supplier_links_refresh(system="coupa", records=records)
    assert counts["created"] == 1500 and counts["proposed"] == 750 and counts["unmatched"] == 750
    assert ExceptionItem.objects.filter(code="SUPPLIER_MATCH_UNCONFIRMED", status="open").count() == 1500


# --- a person's decisions -----------------------------------------------------------------------------


@pytest.fixture
def proposed(erp):
    supplier_links_refresh(system="coupa", records=[coupa("3", "Mueller Gebaeudetechnik", number="C-77", country="DE")])
    return link_of("3")


def test_confirming_resolves_the_item_naming_who_and_what(proposed, admin_user):
    link = supplier_link_confirm(link=proposed, actor=admin_user)
    assert (link.status, link.code, link.decided_by) == ("confirmed", "V00012", admin_user)
    event = item_of("3").events.last()
    assert (item_of("3").status, event.action, event.actor) == ("resolved", "confirmed", admin_user)
    assert "admin linked Coupa supplier 'Mueller Gebaeudetechnik'" in event.reason and "V00012" in event.reason


def test_a_persons_pick_survives_a_refresh(proposed, admin_user):
    supplier_link_confirm(link=proposed, actor=admin_user, code="V00034")
    counts = supplier_links_refresh(
        system="coupa", records=[coupa("3", "Mueller Gebaeudetechnik (renamed)", number="C-77", country="DE")]
    )
    link = link_of("3")
    assert counts["decided"] == 1
    assert (link.status, link.code, link.decided_by, link.external_name) == (
        "confirmed",
        "V00034",
        admin_user,
        "Mueller Gebaeudetechnik (renamed)",
    )
    assert item_of("3").status == "resolved"


def test_a_rejected_pair_is_never_proposed_again(proposed, admin_user):
    supplier_link_reject(link=proposed, actor=admin_user, reason="Different company, same name")
    supplier_links_refresh(system="coupa", records=[coupa("3", "Mueller Gebaeudetechnik", number="C-77", country="DE")])
    link, item = link_of("3"), item_of("3")
    assert (link.status, link.code, link.decided_by) == ("rejected", "V00012", admin_user)
    # The supplier is still unknown: the item stays open, and says so.
    assert item.status == "open" and "rejected by admin (Different company, same name)" in item.message
    assert "Pick the right ERP vendor" in item.message and item.events.last().action == "match_rejected"
    # Picking the right vendor afterwards closes it.
    supplier_link_confirm(link=link, actor=admin_user, entity_code="NW-DE", code="V00034")
    assert (link_of("3").status, link_of("3").code, item_of("3").status) == ("confirmed", "V00034", "resolved")


def test_decisions_are_refused_with_a_reason(proposed, admin_user):
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="Say why"):
        supplier_link_reject(link=proposed, actor=admin_user, reason="  ")
    with pytest.raises(WorkbenchError, match="not an ERP vendor"):
        supplier_link_confirm(link=proposed, actor=admin_user, code="V99999")
    stale = link_of("3")
    supplier_link_confirm(link=proposed, actor=admin_user)
    with pytest.raises(WorkbenchError, match="changed meanwhile"):
        supplier_link_reject(link=stale, actor=admin_user, reason="late")
    assert link_of("3").status == "confirmed"


# --- documents use the crosswalk -----------------------------------------------------------------------


def invoice(external_id, **over):
    rec = {
        "external_id": external_id,
        "number": f"INV-{external_id}",
        "entity": "NW-DE",
        "currency": "EUR",
        "total": "119.00",
        "invoice_date": "2026-11-10",
        "supplier_code": "C-77",
        "supplier_name": "Mueller GT",
        "lines": [{"line_no": 1, "description": "Service", "quantity": "1", "unit_price": "100", "amount": "100"}],
    }
    rec.update(over)
    return rec


def test_a_coupa_number_becomes_the_linked_erp_vendor_in_documents(proposed, admin_user):
    assert (
        p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[invoice("I1")]).created[0].party_code
        == "C-77"
    )
    supplier_link_confirm(link=proposed, actor=admin_user)
    assert supplier_code_for("coupa", "C-77") == ("NW-DE", "V00012") == supplier_code_for("coupa", "3")
    doc = p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[invoice("I2")]).created[0]
    assert doc.party_code == "V00012"
    req = {
        "external_id": "R1",
        "number": "R1",
        "entity": "NW-DE",
        "requester_code": "C-77",
        "currency": "EUR",
        "total": "100",
        "status": "pending_approval",
        "lines": [
            {
                "line_no": 1,
                "description": "Service",
                "quantity": "1",
                "unit_price": "100",
                "amount": "100",
                "supplier_code": "C-77",
            }
        ],
    }
    doc = p2p_documents_upsert(system="coupa", kind="requisition", records=[req]).created[0]
    assert doc.lines.get().supplier_code == "V00012" and doc.party_code == "C-77"  # the requester stays the requester
    # Another system's numbers are not translated by Coupa's links.
    assert (
        p2p_documents_upsert(system="einvoice", kind="supplier_invoice", records=[invoice("I3")]).created[0].party_code
        == "C-77"
    )


def test_confirming_brings_documents_stored_before_it_to_the_erp_vendor(proposed, admin_user):
    from workbench.services.validation import documents_validate

    waiting = p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[invoice("I1")]).created[0]
    posted = p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[invoice("I2")]).created[0]
    Document.objects.filter(pk=posted.pk).update(financial_status="posted")
    req = p2p_documents_upsert(
        system="coupa",
        kind="requisition",
        records=[
            {
                "external_id": "R1",
                "number": "R1",
                "entity": "NW-DE",
                "requester_code": "E1",
                "currency": "EUR",
                "total": "100",
                "status": "draft",
                "lines": [
                    {
                        "line_no": 1,
                        "description": "Service",
                        "quantity": "1",
                        "unit_price": "100",
                        "amount": "100",
                        "supplier_code": "C-77",
                    }
                ],
            }
        ],
    ).created[0]
    documents_validate(documents=[waiting])
    assert ExceptionItem.objects.filter(document=waiting, code="UNKNOWN_SUPPLIER", status="open").exists()

    link = supplier_link_confirm(link=proposed, actor=admin_user)
    assert link.documents_updated == 2
    waiting.refresh_from_db()
    assert waiting.party_code == "V00012"
    assert not ExceptionItem.objects.filter(document=waiting, code="UNKNOWN_SUPPLIER", status="open").exists()
    event = waiting.events.get(action="supplier_linked")
    assert "V00012" in event.message and admin_user.username in event.message
    assert req.lines.get().supplier_code == "V00012"
    posted.refresh_from_db()
    assert posted.party_code == "C-77"  # posted as it was: the ERP's history is not rewritten


@pytest.mark.parametrize("typed", ["DE 136 695 976", "de136695976", "136695976", "DE-136.695.976"])
def test_an_einvoice_finds_its_vendor_by_tax_id_however_it_is_typed(erp, typed):
    doc = p2p_documents_upsert(
        system="einvoice",
        kind="supplier_invoice",
        records=[invoice("E1", supplier_code="", supplier_tax_id=typed, entity="")],
    ).created[0]
    assert (doc.party_code, doc.entity_code) == ("V00012", "NW-DE")


# --- the screen --------------------------------------------------------------------------------------------


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def test_staff_confirm_with_htmx_swaps_the_row_and_says_so(proposed, staff):
    p2p_documents_upsert(system="coupa", kind="supplier_invoice", records=[invoice("I1")])
    r = staff.post(f"{SCREEN}{proposed.pk}/confirm/", **HTMX)
    assert r.status_code == 200
    body = r.content.decode()
    assert body.lstrip().startswith(f'<tr id="link-{proposed.pk}"') and 'data-status="confirmed"' in body
    assert "is now linked to ERP vendor V00012 (NW-DE)" in body and "toast" in r["HX-Trigger"]
    assert "1 unposted document naming it now uses that vendor." in r["HX-Trigger"]
    assert 'id="link-counts"' in body and 'hx-swap-oob="true"' in body
    assert link_of("3").status == "confirmed" and item_of("3").status == "resolved"


def test_staff_reject_without_js_redirects_back_to_the_row(proposed, staff):
    r = staff.post(f"{SCREEN}{proposed.pk}/reject/", {"reason": "Not them"})
    assert r.status_code == 302 and r["Location"].endswith(f"?q=3#link-{proposed.pk}")
    assert link_of("3").status == "rejected"
    page = staff.get(r["Location"]).content.decode()
    assert "Rejected: &#x27;Mueller Gebaeudetechnik&#x27; is not ERP vendor V00012" in page


def test_a_reject_without_a_reason_is_a_message_and_changes_nothing(proposed, staff):
    r = staff.post(f"{SCREEN}{proposed.pk}/reject/", {"reason": ""}, **HTMX)
    assert r.status_code == 200 and "Say why" in r.content.decode() and '"level": "error"' in r["HX-Trigger"]
    assert link_of("3").status == "proposed"


@pytest.mark.parametrize("code", ["V99999", "<script>alert(1)</script>", "' OR 1=1 --", "V" * 500, "\x00"])
def test_an_unknown_or_hostile_vendor_code_is_a_message_never_a_500(proposed, staff, code):
    r = staff.post(f"{SCREEN}{proposed.pk}/confirm/", {"code": code, "entity": "<b>NW</b>"}, **HTMX)
    assert r.status_code == 200
    body = r.content.decode()
    assert "not an ERP vendor" in body or "Enter the ERP vendor number" in body
    assert "<script>alert" not in body and "<b>NW" not in body
    assert link_of("3").status == "proposed"


def test_an_empty_pick_is_refused_not_taken_as_a_confirmation(proposed, staff):
    r = staff.post(f"{SCREEN}{proposed.pk}/confirm/", {"code": "  "})
    assert r.status_code == 302 and link_of("3").status == "proposed"
    assert "Enter the ERP vendor number" in staff.get(r["Location"]).content.decode()


def test_analysts_read_the_screen_but_cannot_decide(proposed, analyst_client):
    page = analyst_client.get(SCREEN).content.decode()
    assert "Mueller Gebaeudetechnik" in page and "Read-only" in page and 'data-testid="confirm"' not in page
    assert analyst_client.post(f"{SCREEN}{proposed.pk}/confirm/").status_code == 403
    assert analyst_client.post(f"{SCREEN}{proposed.pk}/reject/", {"reason": "x"}).status_code == 403
    assert link_of("3").status == "proposed"


def test_the_screen_lists_waiting_links_first_and_the_crosswalk_paged(erp, staff):
    supplier_links_refresh(
        system="coupa",
        records=[
            coupa("5", "Globex Industrial", number="C-79"),
            coupa("3", "Mueller Gebaeudetechnik", number="C-77", country="DE"),
            *[coupa(f"K{i}", f"Kunde {i}", number="V00056", tax_id="12-3456789", country="US") for i in range(60)],
        ],
    )
    page = staff.get(SCREEN).content.decode()
    assert page.index("Mueller Gebaeudetechnik") < page.index("Globex Industrial")  # proposed before unmatched
    assert page.count('data-testid="crosswalk-row"') == 50 and "Page 1 of 2" in page
    second = staff.get(SCREEN, {"page": 2}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="lists").content.decode()
    assert second.lstrip().startswith('<div id="lists">') and second.count('data-testid="crosswalk-row"') == 10
    found = staff.get(SCREEN, {"q": "kunde 59"}).content.decode()
    assert found.count('data-testid="crosswalk-row"') == 1 and "Mueller" not in found


def test_a_confirmed_link_can_be_opened_and_rejected(erp, staff):
    supplier_links_refresh(system="coupa", records=[coupa("2", "Shared IBAN Factoring", tax_id="DE136695976")])
    link = link_of("2")
    page = staff.get(SCREEN, {"link": link.pk}).content.decode()
    assert 'data-testid="selected"' in page and f'id="link-{link.pk}"' in page
    staff.post(f"{SCREEN}{link.pk}/reject/", {"reason": "A factoring company, not the vendor"})
    assert link_of("2").status == "rejected" and item_of("2").status == "open"


def test_the_item_page_links_to_the_row(proposed, analyst_client):
    page = analyst_client.get(f"/items/{item_of('3').pk}/").content.decode()
    assert f'href="{SCREEN}?q=3#link-{proposed.pk}"' in page


def test_the_erp_vendor_master_is_never_written(erp):
    before = list(Supplier.objects.values_list("code", "name", "tax_id"))
    supplier_links_refresh(system="coupa", records=[coupa("2", "Other Name", number="V00012", tax_id="DE136695976")])
    assert list(Supplier.objects.values_list("code", "name", "tax_id")) == before
    assert Document.objects.count() == 0 and Decimal(str(link_of("2").score)) == Decimal("1.000")


def test_a_linked_supplier_whose_tax_id_differs_from_the_erp_is_a_conflict_not_a_change(proposed, admin_user):
    from workbench.models import Connection

    Connection.objects.create(name="Business Central (ERP)", kind="business_central", role="erp")
    coupa_conn = Connection.objects.create(name="Coupa", kind="coupa", role="procurement")
    supplier_link_confirm(link=proposed, actor=admin_user)
    record = coupa("3", "Mueller Gebaeudetechnik", number="C-77", country="DE")

    # Someone types another company's VAT id into Coupa: the ERP vendor keeps its own.
    counts = supplier_links_refresh(
        system="coupa", connection=coupa_conn, records=[{**record, "tax_id": "DE 132 882 398"}]
    )
    assert counts["conflicts_raised"] == 1
    conflict = ExceptionItem.objects.get(code="OWNERSHIP_CONFLICT", status="open")
    assert (
        "'DE 132 882 398'" in conflict.message and "'DE136695976'" in conflict.message and "V00012" in conflict.message
    )
    assert conflict.detail["field"] == "tax_id" and conflict.detail["source"] == "procurement"
    assert Supplier.objects.get(code="V00012").tax_id == "DE136695976"
    assert link_of("3").code == "V00012"  # the person's link stands
    client = Client()
    client.force_login(admin_user)
    page = client.get("/masterdata/").content.decode()
    assert "DE136695976" in page and "DE 132 882 398" in page and "Make Coupa the owner of tax id" in page

    # Corrected in Coupa, typed its own way: the same id, so the conflict resolves itself.
    counts = supplier_links_refresh(
        system="coupa", connection=coupa_conn, records=[{**record, "tax_id": "de 136 695 976"}]
    )
    assert counts["conflicts_resolved"] == 1
    conflict.refresh_from_db()
    assert conflict.status == "resolved"


def test_an_admin_may_make_the_procurement_suite_the_owner_of_tax_ids_which_applies_the_waiting_value(
    proposed, admin_user
):
    from workbench.models import Connection
    from workbench.services.ownership import ownership_set

    Connection.objects.create(name="Business Central (ERP)", kind="business_central", role="erp")
    coupa_conn = Connection.objects.create(name="Coupa", kind="coupa", role="procurement")
    supplier_link_confirm(link=proposed, actor=admin_user)
    supplier_links_refresh(
        system="coupa",
        connection=coupa_conn,
        records=[coupa("3", "Mueller Gebaeudetechnik", number="C-77", country="DE", tax_id="DE132882398")],
    )
    assert (
        ownership_set(
            object_type="supplier",
            field="tax_id",
            owner="procurement",
            actor=admin_user,
            reason="Buyers maintain tax ids in Coupa",
        )
        == 1
    )
    assert Supplier.objects.get(code="V00012").tax_id == "DE132882398"
    assert not ExceptionItem.objects.filter(code="OWNERSHIP_CONFLICT", status="open").exists()


def test_without_the_erp_connected_a_differing_tax_id_raises_nothing(proposed, admin_user):
    supplier_link_confirm(link=proposed, actor=admin_user)
    counts = supplier_links_refresh(
        system="coupa",
        records=[coupa("3", "Mueller Gebaeudetechnik", number="C-77", country="DE", tax_id="DE132882398")],
    )
    assert counts["conflicts_raised"] == 0 and not ExceptionItem.objects.filter(code="OWNERSHIP_CONFLICT").exists()


def test_confirming_a_link_whose_tax_id_differs_raises_the_conflict_at_once(erp, admin_user):
    from workbench.models import Connection

    Connection.objects.create(name="Business Central (ERP)", kind="business_central", role="erp")
    Connection.objects.create(name="Coupa", kind="coupa", role="procurement")
    supplier_links_refresh(
        system="coupa", records=[coupa("4", "Kontoso Technik AG", number="C-78", country="AT", tax_id="ATU12345675")]
    )
    link = link_of("4")
    assert link.status == "proposed" and link.code == "V00034"
    supplier_link_confirm(link=link, actor=admin_user)
    conflict = ExceptionItem.objects.get(code="OWNERSHIP_CONFLICT", status="open")
    assert conflict.detail["incoming"] == "ATU12345675" and conflict.detail["current"] == "DE132882398"
    assert conflict.connection.name == "Coupa"


def test_a_tax_id_conflict_follows_its_link_one_per_external_supplier(proposed, admin_user):
    from workbench.models import Connection

    Connection.objects.create(name="Business Central (ERP)", kind="business_central", role="erp")
    coupa_conn = Connection.objects.create(name="Coupa", kind="coupa", role="procurement")
    supplier_link_confirm(link=proposed, actor=admin_user)
    supplier_links_refresh(
        system="coupa", records=[coupa("9", "Müller Gebäudetechnik Nord", number="C-80", country="DE")]
    )
    supplier_link_confirm(link=link_of("9"), actor=admin_user, entity_code="NW-DE", code="V00012")
    a = coupa("3", "Mueller Gebaeudetechnik", number="C-77", country="DE", tax_id="DE132882398")
    b = coupa("9", "Müller Gebäudetechnik Nord", number="C-80", country="DE", tax_id="DE136695976")
    assert supplier_links_refresh(system="coupa", connection=coupa_conn, records=[a])["conflicts_raised"] == 1
    # Another Coupa supplier of the same vendor agreeing does not settle the first one's question.
    supplier_links_refresh(system="coupa", connection=coupa_conn, records=[b])
    assert ExceptionItem.objects.filter(code="OWNERSHIP_CONFLICT", status="open").count() == 1
    # Pointed at the vendor whose VAT id it is: the old question is gone, no new one.
    supplier_link_confirm(link=link_of("3"), actor=admin_user, entity_code="NW-DE", code="V00034")
    assert not ExceptionItem.objects.filter(code="OWNERSHIP_CONFLICT", status="open").exists()


def test_rejecting_a_link_closes_its_tax_id_question(proposed, admin_user):
    from workbench.models import Connection

    Connection.objects.create(name="Business Central (ERP)", kind="business_central", role="erp")
    coupa_conn = Connection.objects.create(name="Coupa", kind="coupa", role="procurement")
    supplier_link_confirm(link=proposed, actor=admin_user)
    supplier_links_refresh(
        system="coupa",
        connection=coupa_conn,
        records=[coupa("3", "Mueller Gebaeudetechnik", number="C-77", country="DE", tax_id="DE132882398")],
    )
    assert ExceptionItem.objects.filter(code="OWNERSHIP_CONFLICT", status="open").exists()
    supplier_link_reject(link=link_of("3"), actor=admin_user, reason="Different company")
    assert not ExceptionItem.objects.filter(code="OWNERSHIP_CONFLICT", status="open").exists()


def test_a_link_the_evidence_confirms_later_updates_the_documents_that_waited(erp):
    from workbench.services.validation import documents_validate

    supplier_links_refresh(
        system="coupa", records=[coupa("5", "Globex Industrial Supplies Inc.", number="C-79", country="DE")]
    )
    assert link_of("5").status == "unmatched"
    doc = p2p_documents_upsert(
        system="coupa", kind="supplier_invoice", records=[invoice("I9", supplier_code="C-79")]
    ).created[0]
    documents_validate(documents=[doc])
    assert ExceptionItem.objects.filter(document=doc, code="UNKNOWN_SUPPLIER", status="open").exists()
    # A buyer adds the VAT id in Coupa: the next refresh confirms the link by tax id, and the invoice follows.
    counts = supplier_links_refresh(
        system="coupa",
        records=[coupa("5", "Globex Industrial Supplies Inc.", number="C-79", country="DE", tax_id="DE136695976")],
    )
    assert link_of("5").status == "confirmed" and counts["documents_updated"] == 1
    doc.refresh_from_db()
    assert doc.party_code == "V00012"
    assert not ExceptionItem.objects.filter(document=doc, code="UNKNOWN_SUPPLIER", status="open").exists()
    assert "matched automatically" in doc.events.get(action="supplier_linked").message
