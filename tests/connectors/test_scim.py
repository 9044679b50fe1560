"""The SCIM connector against its SCIM 2.0 sandbox (in-thread HTTP server, no Django)."""

from __future__ import annotations

import threading
from datetime import date

import pytest
import requests

from connectors.base import ConfigError, MalformedPayload, Rejected, TransientError, WriteOp
from connectors.sandboxkit.kit import run_in_thread
from connectors.sandboxkit.procurement import build_p2p
from connectors.sandboxkit.world import build_world
from connectors.scim import mapping
from connectors.scim.connector import ScimConnector
from connectors.scim.sandbox.protocol import ENT, ERROR, LIST
from connectors.scim.sandbox.server import STATIC_TOKEN, ScimSandbox

WORLD_ARGS = {"seed": 3, "today": date(2026, 11, 20), "n_employees": 20, "n_lines": 60}
WORLD = build_world(**WORLD_ARGS)
MANAGERS = build_p2p(WORLD, seed=3).managers
ACTIVE = [e for e in WORLD.employees if e.status == "Active"]
HOSTILE = '<script>alert(1)</script> & "quotes" — Ünïcode'
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def stop(server) -> None:
    # shutdown() waits for serve_forever's 0.5 s poll: let it finish in the background.
    threading.Thread(target=lambda: (server.shutdown(), server.server_close()), daemon=True).start()


@pytest.fixture
def box():
    sandbox = ScimSandbox(data_path=None, **WORLD_ARGS)
    server, base = run_in_thread(sandbox)
    yield sandbox, base
    stop(server)


@pytest.fixture
def url(box):
    return box[1]


def oauth(url: str, **extra) -> ScimConnector:
    return ScimConnector(
        {"base_url": url, "client_id": "workbench", "client_secret": "sandbox-secret", "timeout": 5, **extra}
    )


def static(url: str, token: str = STATIC_TOKEN, **extra) -> ScimConnector:
    return ScimConnector({"base_url": url, "token": token, "timeout": 5, **extra})


def scim(url: str, method: str, path: str, token: str = STATIC_TOKEN, **kwargs) -> requests.Response:
    return requests.request(
        method, f"{url}/scim/v2/{path}", headers={"Authorization": f"Bearer {token}"}, timeout=5, **kwargs
    )


def control(url: str, path: str, body: dict | None = None) -> dict:
    resp = requests.post(f"{url}{path}", json=body or {}, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def read(conn: ScimConnector, cursor=None):
    pages = list(conn.read("employees", cursor))
    return [r for p in pages for r in p.records], [e for p in pages for e in p.errors], pages


def user_of(url: str, code: str) -> dict:
    (user,) = scim(url, "GET", "Users", params={"filter": f'externalId eq "{code}"'}).json()["Resources"]
    return user


def patch(url: str, user_id: str, *operations: dict) -> requests.Response:
    return scim(url, "PATCH", f"Users/{user_id}", json={"schemas": [PATCH_OP], "Operations": list(operations)})


def assert_scim_error(resp: requests.Response, status: int, scim_type: str | None = None) -> None:
    body = resp.json()
    assert resp.status_code == status and body["schemas"] == [ERROR] and body["status"] == str(status), body
    assert body.get("scimType") == scim_type and body["detail"]


# --- the SCIM surface ---------------------------------------------------------------------------


def test_users_page_with_start_index_and_count(url):
    first = scim(url, "GET", "Users", params={"startIndex": 1, "count": 7}).json()
    assert first["schemas"] == [LIST]
    assert (first["totalResults"], first["itemsPerPage"], first["startIndex"]) == (20, 7, 1)
    last = scim(url, "GET", "Users", params={"startIndex": 15, "count": 7}).json()
    assert (last["itemsPerPage"], last["startIndex"]) == (6, 15)
    ids = [
        u["id"]
        for start in (1, 8, 15)
        for u in scim(url, "GET", "Users", params={"startIndex": start, "count": 7}).json()["Resources"]
    ]
    assert len(ids) == len(set(ids)) == 20
    assert scim(url, "GET", "Users", params={"count": 0}).json()["itemsPerPage"] == 0
    assert_scim_error(scim(url, "GET", "Users", params={"count": "ten"}), 400, "invalidValue")


def test_count_is_capped_at_100():
    sandbox = ScimSandbox(data_path=None, **{**WORLD_ARGS, "n_employees": 130})
    server, base = run_in_thread(sandbox)
    try:
        body = scim(base, "GET", "Users", params={"count": 500}).json()
        assert (body["totalResults"], body["itemsPerPage"]) == (130, 100)
    finally:
        stop(server)


def test_a_user_has_the_rfc_enterprise_user_shape(url):
    emp = next(e for e in ACTIVE if e.code in MANAGERS)
    user = user_of(url, emp.code)
    assert user["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", ENT]
    assert (user["userName"], user["displayName"], user["active"]) == (emp.email, emp.name, True)
    assert user["name"] == {"givenName": emp.first, "familyName": emp.last, "formatted": emp.name}
    assert user["emails"] == [{"value": emp.email, "type": "work", "primary": True}]
    ext = user[ENT]
    assert (ext["employeeNumber"], ext["costCenter"], ext["organization"]) == (emp.code, emp.cost_center, emp.entity)
    boss = user_of(url, MANAGERS[emp.code])
    assert ext["manager"] == {
        "value": boss["id"],
        "$ref": f"{url}/scim/v2/Users/{boss['id']}",
        "displayName": boss["displayName"],
    }
    meta = user["meta"]
    assert meta["resourceType"] == "User" and meta["location"] == f"{url}/scim/v2/Users/{user['id']}"
    assert meta["version"].startswith('W/"') and meta["created"] <= meta["lastModified"]
    single = scim(url, "GET", f"Users/{user['id']}")
    assert single.json() == user and single.headers["ETag"] == meta["version"]
    assert_scim_error(scim(url, "GET", "Users/nobody"), 404)


def test_filters_entra_sends_and_their_and(url):
    emp = ACTIVE[3]

    def ids(expr: str) -> list[str]:
        resp = scim(url, "GET", "Users", params={"filter": expr})
        assert resp.status_code == 200, resp.text
        return [u[ENT]["employeeNumber"] for u in resp.json()["Resources"]]

    assert ids(f'userName eq "{emp.email.upper()}"') == [emp.code]  # userName is not case exact
    assert ids(f'externalId eq "{emp.code}"') == [emp.code]
    assert ids(f'externalId eq "{emp.code.lower()}"') == []  # externalId is
    stamp = user_of(url, emp.code)["meta"]["lastModified"]
    newer = ids(f'meta.lastModified gt "{stamp}"')
    assert emp.code not in newer and set(newer) <= {e.code for e in WORLD.employees}
    assert ids(f'meta.lastModified gt "{stamp}" and externalId eq "{emp.code}"') == []
    assert ids(f'meta.lastModified ge "{stamp}" AND userName eq "{emp.email}"') == [emp.code]
    assert ids(f'{ENT}:employeeNumber eq "{emp.code}"') == [emp.code]
    assert len(ids("active eq false")) == 20 - len(ACTIVE)


@pytest.mark.parametrize(
    "expr",
    [
        'userName eq "a" or userName eq "b"',  # or: not supported
        'title eq "Boss"',  # an attribute the sandbox does not filter on
        'emails[type eq "work"].value eq "x"',  # value paths
        'userName eq "unterminated',
        'meta.lastModified gt "yesterday"',
        'active eq "False"',  # a boolean compared with a string
    ],
)
def test_an_unsupported_filter_is_400_invalid_filter(url, expr):
    assert_scim_error(scim(url, "GET", "Users", params={"filter": expr}), 400, "invalidFilter")


def test_discovery_documents_are_static_and_rfc_shaped(url):
    spc = scim(url, "GET", "ServiceProviderConfig").json()
    assert spc["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert spc["patch"]["supported"] and spc["filter"] == {"supported": True, "maxResults": 100}
    types = scim(url, "GET", "ResourceTypes").json()
    assert types["schemas"] == [LIST] and types["Resources"][0]["schemaExtensions"][0]["schema"] == ENT
    schemas = {s["id"]: s for s in scim(url, "GET", "Schemas").json()["Resources"]}
    assert {a["name"] for a in schemas[ENT]["attributes"]} >= {"employeeNumber", "costCenter", "manager"}
    assert scim(url, "GET", f"Schemas/{ENT}").json()["name"] == "EnterpriseUser"


# --- PATCH and POST, as Entra sends them ---------------------------------------------------------


def test_patch_in_entras_style_deactivates_and_updates(url):
    user = user_of(url, ACTIVE[4].code)
    boss = user_of(url, ACTIVE[0].code)
    resp = patch(
        url,
        user["id"],
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "path": "displayName", "value": "Renamed Person"},
        {"op": "Replace", "path": f"{ENT}:costCenter", "value": "FIN"},
        {"op": "Replace", "path": f"{ENT}:manager", "value": boss["id"]},
    )
    assert resp.status_code == 200, resp.text
    after = resp.json()
    assert (after["active"], after["displayName"], after[ENT]["costCenter"]) == (False, "Renamed Person", "FIN")
    assert after[ENT]["manager"]["value"] == boss["id"]
    assert after["meta"]["lastModified"] > user["meta"]["lastModified"]
    assert after["meta"]["version"] != user["meta"]["version"] and resp.headers["ETag"] == after["meta"]["version"]

    # The same change again is no change: lastModified and version stay.
    again = patch(url, user["id"], {"op": "Replace", "path": "active", "value": "False"}).json()
    assert again["meta"] == after["meta"]
    # Path-less replace with a value object, RFC-style booleans and manager removal.
    back = patch(
        url,
        user["id"],
        {"op": "replace", "value": {"active": True, "name.givenName": "Re"}},
        {"op": "Remove", "path": f"{ENT}:manager"},
    ).json()
    assert back["active"] is True and back["name"]["givenName"] == "Re" and "manager" not in back[ENT]


@pytest.mark.parametrize(
    "operation, scim_type",
    [
        ({"op": "Replace", "path": "active", "value": "nope"}, "invalidValue"),
        ({"op": "Replace", "path": "title", "value": "Boss"}, "invalidPath"),
        ({"op": "Move", "path": "active", "value": True}, "invalidSyntax"),
        ({"op": "Replace", "path": f"{ENT}:manager", "value": "no-such-id"}, "invalidValue"),
    ],
)
def test_a_bad_patch_is_a_scim_400_and_changes_nothing(url, operation, scim_type):
    user = user_of(url, ACTIVE[5].code)
    assert_scim_error(
        patch(url, user["id"], {"op": "Replace", "path": "displayName", "value": "X"}, operation), 400, scim_type
    )
    assert user_of(url, ACTIVE[5].code) == user
    assert_scim_error(scim(url, "PATCH", f"Users/{user['id']}", json={"Operations": []}), 400, "invalidSyntax")


def test_post_creates_a_user_and_a_taken_user_name_is_409(url):
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "userName": "new.hire@northwind.example",
        "externalId": "E9001",
        "active": "True",
        "displayName": "New Hire",
        "title": "Analyst",
        "name": {"givenName": "New", "familyName": "Hire"},
        "emails": [{"value": "new.hire@northwind.example", "type": "work", "primary": True}],
        ENT: {"employeeNumber": "E9001", "organization": "NW-US", "division": "Finance"},
    }
    resp = scim(url, "POST", "Users", json=body)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert resp.headers["Location"] == created["meta"]["location"] == f"{url}/scim/v2/Users/{created['id']}"
    assert created["active"] is True and created[ENT]["employeeNumber"] == "E9001"
    assert created["meta"]["created"] == created["meta"]["lastModified"]
    assert_scim_error(
        scim(url, "POST", "Users", json={**body, "userName": "NEW.HIRE@northwind.example"}), 409, "uniqueness"
    )
    assert_scim_error(scim(url, "POST", "Users", data=b"{not json"), 400, "invalidSyntax")


# --- the connector ------------------------------------------------------------------------------


def test_check_and_discover(url):
    result = oauth(url).check()
    assert result.ok and "20 user(s)" in result.message
    (spec,) = oauth(url).discover()
    assert (spec.name, spec.canonical, spec.cursor_field) == ("employees", "employee", "last_modified")


def test_a_full_read_gives_canonical_employees_with_managers_as_employee_numbers(url):
    records, errors, _ = read(oauth(url, page_size=3))
    assert not errors and len(records) == 20
    by_code = {r["code"]: r for r in records}
    for emp in WORLD.employees:
        rec = by_code[emp.code]
        assert (rec["entity"], rec["name"], rec["email"], rec["cost_center"]) == (
            emp.entity,
            emp.name,
            emp.email,
            emp.cost_center,
        )
        assert rec["status"] == ("active" if emp.status == "Active" else "inactive")
        assert rec["manager"] == MANAGERS.get(emp.code, "")
        assert rec["updated_at"].endswith("Z")


def test_full_then_incremental_read_returns_only_the_offboarded_user(url):
    conn = oauth(url, page_size=7)
    _, _, pages = read(conn)
    cursor = pages[-1].next_cursor
    assert read(conn, cursor)[0] == []  # nothing changed yet

    leaver = ACTIVE[6]
    assert control(url, "/sandbox/deactivate", {"employee_number": leaver.code})["changed"] is True
    records, errors, pages = read(oauth(url), cursor)  # a fresh connector: managers looked up, not cached
    assert not errors and [(r["code"], r["status"]) for r in records] == [(leaver.code, "inactive")]
    assert records[0]["manager"] == MANAGERS.get(leaver.code, "")
    assert pages[-1].next_cursor["last_modified"] > cursor["last_modified"]
    assert read(conn, pages[-1].next_cursor)[0] == []


def test_changes_in_the_cursors_second_are_neither_skipped_nor_repeated(box):
    sandbox, url = box
    sandbox._now = lambda: sandbox._last  # a stopped clock: every change lands in the same second
    conn = static(url)
    control(url, "/sandbox/deactivate", {"employee_number": ACTIVE[7].code})
    cursor = read(conn)[2][-1].next_cursor
    assert len(cursor["seen"]) >= 2  # the seeded users of that second and the offboarded one

    control(url, "/sandbox/deactivate", {"employee_number": ACTIVE[8].code})
    records, _, pages = read(conn, cursor)
    assert [r["code"] for r in records] == [ACTIVE[8].code]
    assert pages[-1].next_cursor["last_modified"] == cursor["last_modified"]
    control(url, "/sandbox/touch", {"employee_number": ACTIVE[7].code})  # a new version in the same second
    assert [r["code"] for r in read(conn, pages[-1].next_cursor)[0]] == [ACTIVE[7].code]


def test_a_user_changed_mid_read_is_read_again_and_nobody_is_skipped(url):
    conn = oauth(url, page_size=4)
    pages = conn.read("employees", None)
    first = next(pages)
    control(url, "/sandbox/deactivate", {"employee_number": first.records[0]["code"]})
    rest = [r for p in pages for r in p.records]
    assert {r["code"] for r in first.records + rest} == {e.code for e in WORLD.employees}
    assert next(r for r in rest if r["code"] == first.records[0]["code"])["status"] == "inactive"


def test_a_user_that_cannot_be_mapped_is_a_record_error(url):
    created = scim(url, "POST", "Users", json={"userName": "svc-backup", "displayName": "Backup service"})
    assert created.status_code == 201
    records, errors, _ = read(oauth(url))
    (error,) = errors
    assert error.external_id == created.json()["id"] and "no employeeNumber or externalId" in error.message
    assert error.summary == {"name": "Backup service"} and len(records) == 20


def test_mapping_reads_entra_string_booleans_and_names_the_bad_field():
    user = {
        "id": "u1",
        "externalId": "E1",
        "active": "False",
        "meta": {"lastModified": "2026-11-20T10:00:00.5Z"},
        ENT: {"manager": {"value": "m1"}},
        "userName": "a@b.example",
    }
    rec = mapping.employee(user, {"m1": "E0"})
    assert (rec["status"], rec["manager"], rec["email"], rec["updated_at"]) == (
        "inactive",
        "E0",
        "a@b.example",
        "2026-11-20T10:00:00Z",
    )
    _, error = mapping.map_record({**user, "active": "maybe"}, {})
    assert "active is not a boolean: 'maybe'" in error.message


def test_static_token_auth(url):
    records, _, _ = read(static(url))
    assert len(records) == 20
    bad = static(url, token="wrong")
    assert not bad.check().ok
    with pytest.raises(ConfigError):
        read(bad)
    assert_scim_error(scim(url, "GET", "Users", token="wrong"), 401)


def test_deactivate_user_is_idempotent(url):
    conn = static(url)
    emp = ACTIVE[9]
    first = conn.write(WriteOp("deactivate_user", {"employee_number": emp.code}), idempotency_key="k1")
    stamp = user_of(url, emp.code)["meta"]["lastModified"]
    again = conn.write(WriteOp("deactivate_user", {"employee_number": emp.code}), idempotency_key="k1")
    assert (
        (first.external_id, first.status)
        == (again.external_id, again.status)
        == (user_of(url, emp.code)["id"], "inactive")
    )
    assert user_of(url, emp.code)["active"] is False and user_of(url, emp.code)["meta"]["lastModified"] == stamp
    with pytest.raises(Rejected) as exc:
        conn.write(WriteOp("deactivate_user", {"employee_number": "E9999"}), idempotency_key="k2")
    assert exc.value.code == "UNKNOWN_EMPLOYEE"
    with pytest.raises(ValueError):
        conn.write(WriteOp("delete_everyone", {}), idempotency_key="k3")


def test_console_lists_users_escaped_and_offboards(url):
    scim(
        url,
        "POST",
        "Users",
        json={
            "userName": "odd@northwind.example",
            "displayName": HOSTILE,
            "externalId": "E9002",
            ENT: {"employeeNumber": "E9002"},
        },
    )
    page = requests.get(f"{url}/", timeout=5).text
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert ACTIVE[0].name in page and "inactive" in page
    resp = requests.post(
        f"{url}/sandbox/deactivate", data={"employee_number": ACTIVE[1].code}, timeout=5, allow_redirects=False
    )
    assert resp.status_code == 303 and user_of(url, ACTIVE[1].code)["active"] is False


# --- faults -------------------------------------------------------------------------------------


def test_throttling_is_transient_with_retry_after(url):
    control(url, "/sandbox/faults", {"throttle_rate": 1, "retry_after": 2})
    with pytest.raises(TransientError) as exc:
        read(static(url))
    assert exc.value.retry_after == 2.0


def test_malformed_body_is_malformed_payload(url):
    control(url, "/sandbox/faults", {"malformed_rate": 1})
    with pytest.raises(MalformedPayload):
        read(static(url))
