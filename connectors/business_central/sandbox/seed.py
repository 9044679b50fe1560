"""Turn the shared demo world into Business Central v2.0 documents, one collection per entity set.

Stored documents hold BC's public properties plus internal keys starting with ``_`` (the owning
company, the blocked flag BC does not expose, invoice lines...), which the server never sends.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from datetime import UTC, date, datetime, time, timedelta

from connectors.sandbox.world import BLOCKED_ACCOUNTS, BLOCKED_COST_CENTER, GL_ACCOUNTS, TAX_CODES, World, stable_guid

from .odata import iso_ms

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
EMPTY_DATE = "0001-01-01"  # BC's "no date"
DEPARTMENT, PROJECT = "DEPARTMENT", "PROJECT"
SYSTEM_VERSION = "27.0.38460.41032"
ADDRESSES = {
    "US": ("1 Microsoft Way", "Redmond", "WA", "98052"),
    "DE": ("Friedrichstraße 68", "Berlin", "", "10117"),
    "FR": ("39 Quai du Président Roosevelt", "Issy-les-Moulineaux", "", "92130"),
}


def etag(doc: dict) -> str:
    """A weak ETag in BC's style (base64 of a row-version string); changes with every modification."""
    digest = int(hashlib.sha1(f"{doc['id']}|{doc.get('lastModifiedDateTime', '')}".encode()).hexdigest()[:15], 16)
    return 'W/"' + base64.b64encode(f"'19;{digest};00;'".encode()).decode() + '"'


def stamp(doc: dict, when: str) -> dict:
    doc["lastModifiedDateTime"] = when
    doc["@odata.etag"] = etag(doc)
    return doc


def seed_documents(world: World, seed: int) -> dict[str, dict[str, dict]]:
    """Every collection keyed by id. Same world and seed give the same ids and timestamps."""
    # Seeded rows are dated before "today", one millisecond apart, so each has its own stamp and an
    # incremental read resuming at the newest one gets back exactly that row, not a crowd.
    base = datetime.combine(world.today - timedelta(days=30), time(6, 0), UTC)
    tick = itertools.count()

    def ts() -> str:
        return iso_ms(base + timedelta(milliseconds=next(tick)))

    def gid(*parts: object) -> str:
        return stable_guid("bc", seed, *parts)

    out: dict[str, dict[str, dict]] = {}

    def add(coll: str, doc: dict) -> None:
        out.setdefault(coll, {})[doc["id"]] = doc

    for code, display, currency, country, _share in world.entities:
        cid = gid("company", code)
        created = ts()
        add("companies", {
            "id": cid, "systemVersion": SYSTEM_VERSION, "timestamp": 50000 + len(out.get("companies", {})),
            "name": code, "displayName": display, "businessProfileId": "", "systemCreatedAt": created,
            "systemCreatedBy": ZERO_GUID, "systemModifiedAt": created, "systemModifiedBy": ZERO_GUID,
            "@odata.etag": etag({"id": cid, "lastModifiedDateTime": created}),
            "_country": country, "_currency": currency, "_seqDraft": 0, "_seqPosted": 0,
        })
        street, city, state, postal = ADDRESSES.get(country, ("", "", "", ""))
        add("companyInformation", stamp({
            "id": gid("companyInformation", code), "displayName": display, "addressLine1": street,
            "addressLine2": "", "city": city, "state": state, "country": country, "postalCode": postal,
            "phoneNumber": "", "faxNumber": "", "email": f"finance@{code.lower()}.northwind.example",
            "website": "", "taxRegistrationNumber": "", "currencyCode": currency,
            "currentFiscalYearStartDate": date(world.today.year, 1, 1).isoformat(), "industry": "", "_company": cid,
        }, ts()))

        dims = {}
        for dim_code, dim_name in ((DEPARTMENT, "Department"), (PROJECT, "Project")):
            dims[dim_code] = gid("dimension", code, dim_code)
            add("dimensions", stamp({"id": dims[dim_code], "code": dim_code, "displayName": dim_name,
                                     "consolidationCode": "", "_company": cid}, ts()))
        for cc_code, cc_name in world.cost_centers:
            add("dimensionValues", stamp({
                "id": gid("dimensionValue", code, DEPARTMENT, cc_code), "code": cc_code,
                "dimensionId": dims[DEPARTMENT], "dimensionCode": DEPARTMENT, "displayName": cc_name,
                "consolidationCode": "", "_company": cid,
                # Blocked exists in BC but is not an API property: only posting reveals it.
                "_blocked": cc_code == BLOCKED_COST_CENTER[0],
            }, ts()))
        for prj_code, prj_name in world.projects.get(code, []):
            add("dimensionValues", stamp({
                "id": gid("dimensionValue", code, PROJECT, prj_code), "code": prj_code,
                "dimensionId": dims[PROJECT], "dimensionCode": PROJECT, "displayName": prj_name,
                "consolidationCode": "", "_company": cid, "_blocked": False,
            }, ts()))
            add("projects", stamp({"id": gid("project", code, prj_code), "number": prj_code,
                                   "displayName": prj_name, "_company": cid}, ts()))

        for number, name, category in GL_ACCOUNTS:
            add("accounts", stamp({
                "id": gid("account", code, number), "number": number, "displayName": name, "category": category,
                "subCategory": "", "blocked": number in BLOCKED_ACCOUNTS, "accountType": "Posting",
                "directPosting": True, "netChange": 0, "consolidationTranslationMethod": "",
                "consolidationDebitAccount": "", "consolidationCreditAccount": "", "excludeFromConsolidation": False,
                "_company": cid,
            }, ts()))

        for tax_code, tax_name, tax_type in TAX_CODES.get(country, []):
            add("taxGroups", stamp({"id": gid("taxGroup", code, tax_code), "code": tax_code, "displayName": tax_name,
                                    "taxType": tax_type, "_company": cid}, ts()))

        for period in (p for p in world.periods if p.entity == code):
            add("accountingPeriods", stamp({
                "id": gid("accountingPeriod", code, period.code), "startingDate": period.start.isoformat(),
                "name": f"{period.start:%B %Y}", "newFiscalYear": period.start.month == 1,
                "closed": period.closed, "dateLocked": period.closed, "_company": cid,
            }, ts()))

        for emp in world.employees_of(code):
            add("employees", stamp({
                "id": gid("employee", code, emp.code), "number": emp.code, "displayName": emp.name,
                "givenName": emp.first, "middleName": "", "surname": emp.last, "jobTitle": "",
                "addressLine1": "", "addressLine2": "", "city": "", "state": "", "country": country,
                "postalCode": "", "phoneNumber": "", "mobilePhone": "", "email": emp.email, "personalEmail": "",
                "employmentDate": date(world.today.year - 3, 1, 1).isoformat(),
                "terminationDate": (world.today - timedelta(days=20)).isoformat() if emp.status == "Terminated"
                else EMPTY_DATE,
                "status": emp.status, "birthDate": EMPTY_DATE, "statisticsGroupCode": "", "_company": cid,
            }, ts()))
    return out
