"""The procure-to-pay half of the demo world, built on the same seed as `world.py`.

The procurement sandbox (Coupa shape), the approval engine (ServiceNow shape) and the ERP
(Business Central shape) all seed from ``build_p2p(world)``, so supplier numbers, PO numbers and
approvers agree everywhere -- except for the problems planted on purpose, which the workbench must
catch:

- requisitions (pending approval): ``blocked_supplier``, ``no_contract`` (a category that needs a
  contract, from a supplier without one), ``budget_exceeded`` (far above what is left),
  ``unknown_cost_center``;
- supplier invoices against ordered POs: ``price_variance`` (unit price above the PO's),
  ``quantity_variance`` (more invoiced than received), ``not_received`` (no receipt yet),
  ``duplicate`` (the same invoice again with its number spelled differently), ``possible_duplicate``
  (same amount and date from another supplier), ``blocked_supplier`` (supplier blocked since).

Everything is a plain dataclass; each sandbox renders it in its vendor's shape.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from .world import COST_CENTERS, ENTITIES, World, stable_id

# code, name, GL account, contract required, unit price range, unit of measure
CATEGORIES = [
    ("IT-HW", "IT hardware", "6110", False, (250, 2400), "EA"),
    ("IT-SW", "Software licences", "6120", True, (40, 900), "EA"),
    ("PROF-SVC", "Professional services", "6130", True, (90, 220), "HR"),
    ("FACIL", "Facilities and maintenance", "6140", False, (60, 1800), "EA"),
    ("MKT-SVC", "Marketing services", "6150", True, (500, 6000), "EA"),
    ("OFF-FURN", "Office furniture", "6160", False, (120, 950), "EA"),
    ("LAB", "Lab and test equipment", "6170", False, (30, 700), "EA"),
]


ITEMS = {
    "IT-HW": ["Laptop 14in", "Docking station", "27in monitor", "Network switch 24p", "Rugged tablet"],
    "IT-SW": ["Design suite seat", "Monitoring licence", "Database support", "CI minutes pack"],
    "PROF-SVC": ["Implementation consulting", "Tax advisory", "Security assessment", "Data migration"],
    "FACIL": ["HVAC maintenance", "Office cleaning", "Elevator service", "Plumbing repair"],
    "MKT-SVC": ["Trade fair booth", "Campaign production", "Market research study"],
    "OFF-FURN": ["Standing desk", "Task chair", "Meeting table", "Storage cabinet"],
    "LAB": ["Oscilloscope probe", "Test fixtures", "Calibration kit", "ESD mats"],
}

SUPPLIER_NAMES = {
    "US": [
        "Contoso Hardware LLC",
        "Fabrikam Consulting Inc.",
        "Litware Software Corp.",
        "Adatum Facilities Co.",
        "Tailspin Marketing LLC",
        "Wingtip Office Supply",
        "Proseware Labs Inc.",
        "Alpine Ski House Services",
    ],
    "DE": [
        "Kontoso Technik GmbH",
        "Fabrikam Beratung AG",
        "Litware Software GmbH",
        "Adatum Gebäudeservice GmbH",
        "Tailspin Messebau GmbH",
        "Wingtip Büromöbel KG",
        "Proseware Labortechnik GmbH",
    ],
    "FR": [
        "Contoso Informatique SAS",
        "Fabrikam Conseil SARL",
        "Litware Logiciels SA",
        "Adatum Services Généraux",
        "Tailspin Événements SAS",
        "Wingtip Mobilier SARL",
    ],
}
# Supplier index (per entity) -> categories it sells.
SUPPLIER_CATEGORIES = [
    ["IT-HW", "LAB"],
    ["PROF-SVC"],
    ["IT-SW"],
    ["FACIL"],
    ["MKT-SVC"],
    ["OFF-FURN", "FACIL"],
    ["LAB", "IT-HW"],
    ["PROF-SVC", "MKT-SVC"],
]

REQ_PROBLEMS = ["blocked_supplier", "no_contract", "budget_exceeded", "unknown_cost_center"]
INVOICE_PROBLEMS = [
    "price_variance",
    "quantity_variance",
    "not_received",
    "duplicate",
    "possible_duplicate",
    "blocked_supplier",
]


@dataclass
class Supplier:
    number: str  # the ERP's vendor number, also Coupa's supplier "number"
    coupa_id: int
    entity: str
    name: str
    country: str
    currency: str
    tax_id: str
    iban: str
    categories: list[str]
    blocked: str = ""  # BC's vendor.blocked: "" (none), "Payment", "All"
    created_by: str = ""  # employee code of whoever created/last changed it in the ERP (segregation of duties)
    contracts: list[tuple[str, str, date, date]] = field(default_factory=list)  # (number, category, start, end)
    problem: str = ""


@dataclass
class ReqLine:
    line_no: int
    category: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    uom: str
    gl_account: str
    cost_center: str
    supplier: str  # supplier number
    need_by: date

    @property
    def amount(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(Decimal("0.01"))


@dataclass
class Requisition:
    coupa_id: int
    number: str
    entity: str
    currency: str
    requester: str  # employee code
    title: str
    submitted: date
    status: str  # pending_approval | ordered
    lines: list[ReqLine] = field(default_factory=list)
    problem: str = ""
    po_number: str = ""  # set for ordered requisitions

    @property
    def total(self) -> Decimal:
        return sum((ln.amount for ln in self.lines), Decimal("0"))


@dataclass
class ReceiptLine:
    po_line_no: int
    quantity: Decimal


@dataclass
class Receipt:
    coupa_id: int
    po_number: str
    received: date
    lines: list[ReceiptLine]


@dataclass
class InvoiceLine:
    line_no: int
    po_line_no: int | None
    description: str
    quantity: Decimal
    unit_price: Decimal
    tax_code: str

    @property
    def amount(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(Decimal("0.01"))


@dataclass
class Invoice:
    coupa_id: int
    number: str  # as the supplier wrote it
    supplier: str
    entity: str
    currency: str
    po_number: str
    invoice_date: date
    lines: list[InvoiceLine]
    problem: str = ""

    @property
    def total(self) -> Decimal:
        return sum((ln.amount for ln in self.lines), Decimal("0"))


@dataclass
class Budget:
    entity: str
    cost_center: str
    gl_account: str
    period: str  # YYYY-MM
    amount: Decimal


@dataclass
class P2PWorld:
    world: World
    suppliers: list[Supplier]
    requisitions: list[Requisition]
    receipts: list[Receipt]
    invoices: list[Invoice]
    budgets: list[Budget]
    cost_center_owners: dict[tuple[str, str], str]  # (entity, cost center) -> employee code
    managers: dict[str, str]  # employee code -> manager's employee code (the approval hierarchy)
    users: dict[str, int]  # employee code -> Coupa user id

    def supplier(self, number: str) -> Supplier:
        return next(s for s in self.suppliers if s.number == number)

    def requisition_for_po(self, po_number: str) -> Requisition:
        return next(r for r in self.requisitions if r.po_number == po_number)

    def problem_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for obj in [*self.requisitions, *self.invoices]:
            if obj.problem:
                key = f"{type(obj).__name__.lower()}:{obj.problem}"
                counts[key] = counts.get(key, 0) + 1
        return counts


def _tax_id(country: str, n: int) -> str:
    """A syntactically valid tax id per country (check digits computed, so stdnum accepts them)."""
    if country == "US":
        prefixes = [10, 12, 20, 22, 30, 41, 45, 52, 61, 71, 81, 91]  # EIN campus prefixes the IRS issues
        return f"{prefixes[n % len(prefixes)]:02d}-{3456780 + n * 7919 % 1000000:07d}"
    if country == "DE":
        body = f"{(12345678 + n * 104729) % 100000000:08d}"
        product = 10
        for ch in body:
            s = (int(ch) + product) % 10 or 10
            product = (2 * s) % 11
        return f"DE{body}{(11 - product) % 10}"
    siren = f"{(40448304 + n * 7211) % 100000000:08d}"
    total = sum(
        int(d) * (1 if i % 2 == 0 else 2) // 10 + int(d) * (1 if i % 2 == 0 else 2) % 10 for i, d in enumerate(siren)
    )
    siren += str((10 - total % 10) % 10)
    key = (12 + 3 * (int(siren) % 97)) % 97
    return f"FR{key:02d}{siren}"


def _iban(country: str, n: int) -> str:
    bban = {"US": None, "DE": f"37040044{n:010d}", "FR": f"2004101005{n:010d}M06"}.get(country)
    if bban is None:
        return ""
    cc = country
    digits = "".join(str(int(c, 36)) for c in bban + cc + "00")
    check = 98 - int(digits) % 97
    return f"{cc}{check:02d}{bban}"


def build_p2p(world: World, *, seed: int = 42, n_requisitions: int = 60) -> P2PWorld:
    """Same world and seed, same procurement data."""
    rng = random.Random(seed * 7 + 3)
    today = world.today
    last_day = today - timedelta(days=1)  # seeded events happen before today (see world.py)
    entity_info = {e[0]: e for e in ENTITIES}

    # People: cost center owners and a manager chain per entity (owner -> finance director -> CFO).
    managers: dict[str, str] = {}
    owners: dict[tuple[str, str], str] = {}
    users: dict[str, int] = {}
    for i, emp in enumerate(world.employees):
        users[emp.code] = 100 + i
    for code, *_ in ENTITIES:
        staff = [e for e in world.employees_of(code) if e.status == "Active"]
        if len(staff) < 3:
            continue
        cfo, director = staff[0], staff[1]
        managers[director.code] = cfo.code
        owner_pool = staff[2 : 2 + len(COST_CENTERS)] or [director]
        for k, (cc, _name) in enumerate(COST_CENTERS):
            owner = owner_pool[k % len(owner_pool)]
            owners[(code, cc)] = owner.code
            managers.setdefault(owner.code, director.code)
        for emp in staff[2:]:
            managers.setdefault(emp.code, owners.get((code, emp.cost_center), director.code))
        owners.setdefault((code, "LEGACY"), director.code)

    # Suppliers, with contracts for the categories that need one (one supplier per entity has none).
    suppliers: list[Supplier] = []
    coupa_id = 4000
    for code, _display, currency, country, _share in ENTITIES:
        staff = [e.code for e in world.employees_of(code) if e.status == "Active"]
        for k, name in enumerate(SUPPLIER_NAMES[country]):
            coupa_id += 1
            n = len(suppliers) + 1
            cats = SUPPLIER_CATEGORIES[k % len(SUPPLIER_CATEGORIES)]
            sup = Supplier(
                number=f"V{10000 + n * 10}",
                coupa_id=coupa_id,
                entity=code,
                name=name,
                country=country,
                currency=currency,
                tax_id=_tax_id(country, n),
                iban=_iban(country, n),
                categories=cats,
                created_by=staff[(k * 3 + 1) % len(staff)] if staff else "",
            )
            for cat in cats:
                if next(c for c in CATEGORIES if c[0] == cat)[3] and k != 7:
                    sup.contracts.append(
                        (
                            f"CTR-{code[-2:]}-{n:03d}-{cat}",
                            cat,
                            today - timedelta(days=400),
                            today + timedelta(days=300),
                        )
                    )
            suppliers.append(sup)
    # One blocked supplier per entity (BC vendor.blocked = "All"): the last one of each entity.
    for code, *_ in ENTITIES:
        mine = [s for s in suppliers if s.entity == code]
        mine[-1].blocked = "All"
        mine[-1].problem = "blocked"
        # One contract-category supplier without a contract: drop the contracts of the second one.
        mine[1].contracts.clear()
        mine[1].problem = "no_contract"

    def pick_supplier(entity: str, *, allow_blocked=False, allow_uncontracted=False) -> Supplier:
        pool = [
            s
            for s in suppliers
            if s.entity == entity
            and (allow_blocked or not s.blocked)
            and (allow_uncontracted or s.problem != "no_contract")
        ]
        return rng.choice(pool)

    def lines_for(sup: Supplier, entity: str, requester, need_by: date, n: int) -> list[ReqLine]:
        out = []
        for j in range(n):
            cat = rng.choice(sup.categories)
            spec = next(c for c in CATEGORIES if c[0] == cat)
            qty = Decimal(
                rng.choice([1, 1, 2, 3, 4, 5, 10, 12, 20]) if spec[5] == "EA" else rng.choice([8, 16, 24, 40, 80])
            )
            price = (Decimal(rng.randint(spec[4][0] * 100, spec[4][1] * 100)) / 100).quantize(Decimal("0.01"))
            out.append(
                ReqLine(
                    j + 1,
                    cat,
                    rng.choice(ITEMS[cat]),
                    qty,
                    price,
                    spec[5],
                    spec[2],
                    requester.cost_center,
                    sup.number,
                    need_by,
                )
            )
        return out

    requisitions: list[Requisition] = []
    receipts: list[Receipt] = []
    invoices: list[Invoice] = []
    po_seq: dict[str, int] = {}
    bosses = set(managers.values())  # a set: a big world's employees are not scanned once per employee
    active = [e for e in world.employees if e.status == "Active" and e.code not in bosses]
    for i in range(n_requisitions):
        requester = rng.choice(active)
        entity = requester.entity
        currency = entity_info[entity][2]
        submitted = today - timedelta(days=rng.randint(1, 40))
        ordered = i % 3 != 0  # two thirds are already POs (history), one third waits for approval
        if ordered:
            # Ordered two days after submission (the Coupa seed), received later still: all before today.
            submitted = min(submitted, today - timedelta(days=4))
        sup = pick_supplier(entity)
        req = Requisition(
            coupa_id=2000 + i,
            number=str(2000 + i),
            entity=entity,
            currency=currency,
            requester=requester.code,
            title="",
            submitted=submitted,
            status="ordered" if ordered else "pending_approval",
            lines=lines_for(sup, entity, requester, submitted + timedelta(days=14), rng.randint(1, 4)),
        )
        req.title = f"{req.lines[0].description} for {requester.cost_center}"
        if not ordered:
            problem = REQ_PROBLEMS[(i // 3) % 8] if (i // 3) % 8 < len(REQ_PROBLEMS) else ""
            if problem == "blocked_supplier":
                bad = [s for s in suppliers if s.entity == entity and s.blocked][0]
                for ln in req.lines:
                    ln.supplier = bad.number
            elif problem == "no_contract":
                bad = [s for s in suppliers if s.entity == entity and s.problem == "no_contract"][0]
                cat = next(c for c in bad.categories if next(x for x in CATEGORIES if x[0] == c)[3])
                spec = next(c for c in CATEGORIES if c[0] == cat)
                for ln in req.lines:
                    ln.supplier, ln.category, ln.gl_account = bad.number, cat, spec[2]
            elif problem == "budget_exceeded":
                req.lines[0].quantity = Decimal(500)
                req.lines[0].unit_price = max(req.lines[0].unit_price, Decimal(500))
            elif problem == "unknown_cost_center":
                for ln in req.lines:
                    ln.cost_center = "SALE"
            req.problem = problem
        else:
            po_seq[entity] = po_seq.get(entity, 0) + 1
            req.po_number = f"PO-{entity[-2:]}{106000 + po_seq[entity]}"
        requisitions.append(req)

    # Receipts and invoices for the ordered ones, with the planted invoice problems spread evenly.
    ordered_reqs = [r for r in requisitions if r.status == "ordered"]
    inv_id = 7000
    rec_id = 9000
    for k, req in enumerate(ordered_reqs):
        sup = suppliers_by_number(suppliers)[req.lines[0].supplier]
        problem = INVOICE_PROBLEMS[k % 10] if k % 10 < len(INVOICE_PROBLEMS) else ""
        received_on = min(last_day, req.submitted + timedelta(days=rng.randint(5, 12)))
        partial = k % 7 == 3 and problem == ""
        if problem != "not_received":
            rec_id += 1
            rlines = []
            for ln in req.lines:
                qty = ln.quantity
                if partial and ln.line_no == 1 and qty > 1:
                    qty = (qty / 2).quantize(Decimal("1"))
                rlines.append(ReceiptLine(ln.line_no, qty))
            receipts.append(Receipt(rec_id, req.po_number, received_on, rlines))
        if k % 5 == 4 and problem == "":
            continue  # received, not yet invoiced (the accrual view shows these)
        inv_id += 1
        inv_date = min(last_day, received_on + timedelta(days=rng.randint(0, 6)))
        ilines = []
        for ln in req.lines:
            qty, price = ln.quantity, ln.unit_price
            if partial and ln.line_no == 1 and qty > 1:
                qty = (qty / 2).quantize(Decimal("1"))  # invoiced what arrived
            if problem == "price_variance" and ln.line_no == 1:
                price = (price * Decimal("1.08")).quantize(Decimal("0.01"))
            if problem == "quantity_variance" and ln.line_no == 1:
                qty += 2
            ilines.append(InvoiceLine(ln.line_no, ln.line_no, ln.description, qty, price, _tax_for(sup.country)))
        number = f"INV-{inv_id:05d}"
        inv = Invoice(inv_id, number, sup.number, req.entity, req.currency, req.po_number, inv_date, ilines, problem)
        if problem == "blocked_supplier":
            sup.blocked = sup.blocked or "Payment"  # blocked after the PO was placed
            sup.problem = sup.problem or "blocked_later"
        invoices.append(inv)
        if problem == "duplicate":
            inv_id += 1
            # The supplier sends it again, typed differently: lower case, spaces, no leading zeros.
            again = Invoice(
                inv_id,
                number.replace("INV-", "inv ").replace(" 0", " "),
                sup.number,
                req.entity,
                req.currency,
                req.po_number,
                inv_date,
                [
                    InvoiceLine(x.line_no, x.po_line_no, x.description, x.quantity, x.unit_price, x.tax_code)
                    for x in ilines
                ],
                "duplicate",
            )
            inv.problem = ""
            invoices.append(again)
        elif problem == "possible_duplicate":
            inv_id += 1
            other = pick_supplier(req.entity)
            if other.number == sup.number:
                other = next(
                    s for s in suppliers if s.entity == req.entity and s.number != sup.number and not s.blocked
                )
            inv.problem = ""
            invoices.append(
                Invoice(
                    inv_id,
                    f"{other.name.split()[0][:3].upper()}-{inv_id}",
                    other.number,
                    req.entity,
                    req.currency,
                    "",
                    inv_date,
                    [InvoiceLine(1, None, "Services as agreed", Decimal(1), inv.total, _tax_for(other.country))],
                    "possible_duplicate",
                )
            )

    # Budgets for the current and previous month per entity, cost center and P2P account: sized so
    # that ordinary requisitions fit and the planted "budget_exceeded" one does not.
    budgets = []
    for code, *_ in ENTITIES:
        for cc, _ in COST_CENTERS:
            for cat in CATEGORIES:
                for delta in (-1, 0, 1):
                    start = date(today.year, today.month, 1)
                    m = start.month - 1 + delta
                    period = date(start.year + m // 12, m % 12 + 1, 1)
                    budgets.append(
                        Budget(code, cc, cat[2], f"{period:%Y-%m}", Decimal(rng.choice([60, 80, 120, 150])) * 1000)
                    )

    return P2PWorld(
        world=world,
        suppliers=suppliers,
        requisitions=requisitions,
        receipts=receipts,
        invoices=invoices,
        budgets=budgets,
        cost_center_owners=owners,
        managers=managers,
        users=users,
    )


def suppliers_by_number(suppliers: list[Supplier]) -> dict[str, Supplier]:
    return {s.number: s for s in suppliers}


def _tax_for(country: str) -> str:
    return {"US": "TAXABLE", "DE": "VAT19", "FR": "TVA20"}[country]


def new_requisition_id(seed: int, n: int) -> str:
    return stable_id("req", seed, n, length=8)
