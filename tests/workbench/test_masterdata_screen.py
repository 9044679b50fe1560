"""The Master data page: field owners, ownership conflicts and the decisions admins take on them."""

from __future__ import annotations

import pytest

from tests.factories import master_data
from workbench.models import Connection, Employee, ExceptionItem, FieldOwnership
from workbench.services.masterdata import masterdata_upsert

pytestmark = pytest.mark.django_db
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def conflict():
    """The ERP renames Mary Smith and changes her e-mail; the connected directory owns both."""
    entity = master_data()
    Employee.objects.filter(code="E0001").update(email="mary.smith@northwind.example")
    Connection.objects.create(name="BC", kind="business_central", role="erp")
    Connection.objects.create(name="Directory", kind="scim", role="identity")
    masterdata_upsert(
        stream="employees",
        source="erp",
        source_name="BC",
        records=[{"entity": entity.code, "code": "E0001", "name": "Mary Smith", "email": HOSTILE, "status": "active"}],
    )
    return ExceptionItem.objects.get(code="OWNERSHIP_CONFLICT")


def test_it_shows_each_conflict_with_both_values_and_who_owns_the_field(client, analyst, conflict):
    client.force_login(analyst)
    html = client.get("/masterdata/").content.decode()
    assert f'data-conflict="{conflict.pk}"' in html
    assert (
        "mary.smith@northwind.example" in html
        and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        and HOSTILE not in html
    )
    assert "Identity provider" in html and 'data-field="employee.status"' in html
    assert "Keep owner&#x27;s value" not in html and "Keep owner's value" not in html  # analysts read, admins decide
    assert Employee.objects.get(code="E0001").email == "mary.smith@northwind.example"


def test_analysts_cannot_change_owners_or_decide(client, analyst, conflict):
    client.force_login(analyst)
    assert (
        client.post("/masterdata/owner/", {"object": "employee", "field": "email", "owner": "erp"}).status_code == 403
    )
    assert client.post(f"/masterdata/conflicts/{conflict.pk}/keep/", {"reason": "x"}).status_code == 403
    assert not FieldOwnership.objects.exists()


def test_keeping_the_owners_value_needs_a_reason_and_closes_the_conflict(client, admin_user, conflict):
    client.force_login(admin_user)
    page = client.post(f"/masterdata/conflicts/{conflict.pk}/keep/", {"reason": " "}, follow=True)
    assert "Say why" in page.content.decode()
    client.post(f"/masterdata/conflicts/{conflict.pk}/keep/", {"reason": "The ERP record has a typo"})
    conflict.refresh_from_db()
    assert conflict.status == "overridden" and conflict.events.last().actor == admin_user
    assert Employee.objects.get(code="E0001").email == "mary.smith@northwind.example"


def test_making_the_sender_the_owner_applies_its_value(client, admin_user, conflict):
    client.force_login(admin_user)
    page = client.post(
        "/masterdata/owner/",
        {"object": "employee", "field": "email", "owner": "erp", "reason": "HR moved"},
        follow=True,
    ).content.decode()
    assert "1 waiting change applied" in page
    assert Employee.objects.get(code="E0001").email == HOSTILE
    conflict.refresh_from_db()
    assert conflict.status == "resolved"
    change = FieldOwnership.objects.get()
    assert (change.owner, change.changed_by, change.reason) == ("erp", admin_user, "HR moved")
    # Now the ERP owns it: its next change is applied, and the directory's is the conflict.
    masterdata_upsert(
        stream="employees",
        source="identity",
        records=[
            {
                "entity": "NW-US",
                "code": "E0001",
                "name": "Mary Smith",
                "email": "m.smith@northwind.example",
                "status": "active",
            }
        ],
    )
    assert Employee.objects.get(code="E0001").email == HOSTILE
    assert (
        ExceptionItem.objects.filter(code="OWNERSHIP_CONFLICT", status="open", detail__source="identity").count() == 1
    )


@pytest.mark.parametrize(
    "data",
    [
        {"object": "employee", "field": "email", "owner": HOSTILE},
        {"object": HOSTILE, "field": "email", "owner": "erp"},
        {"object": "employee", "field": "email", "owner": "identity"},  # already the owner
        {},
    ],
)
def test_bad_owner_changes_get_a_message_not_a_500(client, admin_user, conflict, data):
    client.force_login(admin_user)
    response = client.post("/masterdata/owner/", data, follow=True)
    assert response.status_code == 200 and 'class="msg error"' in response.content.decode()
    assert not FieldOwnership.objects.exists()


def test_the_conflict_resolves_itself_when_the_sender_comes_round(conflict):
    masterdata_upsert(
        stream="employees",
        source="erp",
        records=[
            {
                "entity": "NW-US",
                "code": "E0001",
                "name": "Mary Smith",
                "email": "mary.smith@northwind.example",
                "status": "active",
            }
        ],
    )
    conflict.refresh_from_db()
    assert conflict.status == "resolved"


def test_the_item_page_shows_both_values_and_where_to_decide(client, analyst, conflict):
    client.force_login(analyst)
    html = client.get(f"/items/{conflict.pk}/").content.decode()
    assert (
        'data-testid="ownership-link"' in html
        and "mary.smith@northwind.example" in html
        and "/masterdata/#conflicts" in html
    )


def test_the_approval_engine_fills_blank_managers_but_cannot_change_the_directorys(conflict):
    from workbench.services.ownership import employees_field_update

    Employee.objects.filter(code="E0001").update(manager_code="E0009")
    n = employees_field_update(
        field="manager_code",
        values={"E0001": "E0005", "E0002": "E0001", "E404": "E0001"},
        source="approvals",
        source_name="ServiceNow",
    )
    managers = dict(Employee.objects.values_list("code", "manager_code"))
    assert n == 1 and managers == {"E0001": "E0009", "E0002": "E0001"}
    item = ExceptionItem.objects.get(code="OWNERSHIP_CONFLICT", detail__field="manager_code")
    assert item.detail["incoming"] == "E0005" and "ServiceNow" in item.message
    Connection.objects.filter(role="identity").update(enabled=False)  # no directory: the engine's word counts
    assert (
        employees_field_update(field="manager_code", values={"E0001": "E0005"}, source="approvals", source_name="SN")
        == 1
    )
    assert Employee.objects.get(code="E0001").manager_code == "E0005"
    item.refresh_from_db()
    assert item.status == "resolved"
