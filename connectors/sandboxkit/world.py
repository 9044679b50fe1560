"""The deterministic demo world that every sandbox is seeded from.

One seed and one "today" give the same companies, master data, employees and expense reports in
every sandbox, so the ERP's master data and the expense platform's documents agree -- except for the
problems planted on purpose (about 7% of lines), which are what the workbench must catch:

- ``missing_cost_center``   allocation without a cost center
- ``unknown_cost_center``   a cost center the ERP does not know (typos such as ``SALE``)
- ``closed_period``         a late claim dated in a month the ERP has closed
- ``invalid_tax_code``      a tax code the ERP does not have (the old German ``VAT16``)
- ``inactive_employee``     reports of employees the ERP shows as terminated
- ``blocked_cost_center``   the ``LEGACY`` department, which exists but is blocked in the ERP:
                            only the ERP's posting rejects it
- ``blocked_gl_account``    a line on the retired travel account 8990, blocked in the ERP
- ``heading_gl_account``    a line on 8100, a heading of the chart that takes no entries
- ``malformed``             a couple of documents that break the vendor's schema

Names are generated from small lists; no real person is meant.

Everything that happened in the world (submissions, approvals, orders, receipts, invoices, user
changes) happened before ``today``: the last event day is the day before, and no seeded timestamp is
later than ``seeded_until(today)``, the last second before ``today`` starts (UTC, the sandboxes'
clock). So a sandbox seeded around the real today never shows history ahead of its own clock, and
"approved in Concur" never sorts after "posted in the ERP" in a document's trace.
"""

from __future__ import annotations

import calendar
import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

ENTITIES = [
    # code (BC company name / Concur ledger code), display name, currency, country, employee share
    ("NW-US", "Northwind Traders Inc.", "USD", "US", 0.5),
    ("NW-DE", "Northwind Handels GmbH", "EUR", "DE", 0.3),
    ("NW-FR", "Northwind France SAS", "EUR", "FR", 0.2),
]

COST_CENTERS = [
    ("ADM", "Administration"),
    ("SALES", "Sales"),
    ("MKTG", "Marketing"),
    ("ENG", "Engineering"),
    ("FIN", "Finance"),
    ("OPS", "Operations"),
    ("HR", "Human Resources"),
    ("IT", "IT Services"),
    ("LEGAL", "Legal"),
    ("SUPPORT", "Customer Support"),
    ("PURCH", "Purchasing"),
    ("RND", "Research"),
]
BLOCKED_COST_CENTER = ("LEGACY", "Legacy Services (closed)")
UNKNOWN_COST_CENTERS = ["SALE", "MARKETING", "ENGG", "CC-1200"]

# expense type code, name, GL account, typical amount range in entity currency
EXPENSE_TYPES = [
    ("AIRFR", "Airfare", "8110", (180, 1400)),
    ("TAXI", "Taxi / Rideshare", "8110", (12, 95)),
    ("LODNG", "Hotel", "8130", (90, 420)),
    ("MEALS", "Meals", "8120", (8, 120)),
    ("CARMI", "Mileage", "8140", (15, 160)),
    ("OFCSP", "Office Supplies", "8150", (5, 180)),
    ("PHONE", "Mobile Phone", "8160", (20, 90)),
    ("TRNG", "Training", "8170", (150, 1900)),
    ("ENTMT", "Client Entertainment", "8180", (40, 650)),
    ("SUBSC", "Software Subscription", "8190", (9, 240)),
]
GL_ACCOUNTS = [
    ("8110", "Travel", "Expense"),
    ("8120", "Meals", "Expense"),
    ("8130", "Lodging", "Expense"),
    ("8140", "Mileage", "Expense"),
    ("8150", "Office Supplies", "Expense"),
    ("8160", "Telephone", "Expense"),
    ("8170", "Training", "Expense"),
    ("8180", "Entertainment", "Expense"),
    ("8190", "Software", "Expense"),
    ("2310", "Employee Payables", "Liabilities"),
    ("8990", "Old Travel (blocked)", "Expense"),
    # Procure-to-pay (see procurement.py CATEGORIES)
    ("6110", "IT hardware", "Expense"),
    ("6120", "Software licences", "Expense"),
    ("6130", "Professional services", "Expense"),
    ("6140", "Facilities and maintenance", "Expense"),
    ("6150", "Marketing services", "Expense"),
    ("6160", "Office furniture", "Expense"),
    ("6170", "Lab and test equipment", "Expense"),
    ("2110", "Accounts Payable", "Liabilities"),
    # Accounts the ERP refuses lines on (BLOCKED_GL_ACCOUNT), besides the blocked 8990:
    ("8100", "Travel and Expenses", "Expense"),  # a heading that groups 8110-8190
    ("2190", "Payables Control", "Liabilities"),  # only the system posts to it
]
BLOCKED_ACCOUNTS = {"8990"}
ACCOUNT_TYPES = {"8100": "Heading"}  # every other account is a Posting account
NO_DIRECT_POSTING = {"2190"}

TAX_CODES = {
    "US": [("EXEMPT", "Tax exempt", "Sales Tax"), ("TAXABLE", "Taxable", "Sales Tax")],
    "DE": [("VAT19", "VAT 19%", "VAT"), ("VAT7", "VAT 7%", "VAT"), ("VAT0", "VAT 0%", "VAT")],
    "FR": [("TVA20", "TVA 20%", "VAT"), ("TVA10", "TVA 10%", "VAT"), ("TVA55", "TVA 5,5%", "VAT")],
}
INVALID_TAX_CODES = {"US": "TAX8", "DE": "VAT16", "FR": "TVA196"}

FIRST = {
    "US": [
        "James",
        "Mary",
        "Robert",
        "Patricia",
        "Michael",
        "Linda",
        "David",
        "Susan",
        "Daniel",
        "Karen",
        "Kevin",
        "Nancy",
        "Brian",
        "Lisa",
        "Jason",
        "Emily",
        "Ryan",
        "Megan",
        "Eric",
        "Rachel",
    ],
    "DE": [
        "Lukas",
        "Anna",
        "Jonas",
        "Lea",
        "Felix",
        "Hannah",
        "Paul",
        "Lena",
        "Maximilian",
        "Sophie",
        "Tobias",
        "Julia",
        "Florian",
        "Katrin",
        "Stefan",
    ],
    "FR": [
        "Louis",
        "Camille",
        "Hugo",
        "Chloé",
        "Jules",
        "Léa",
        "Arthur",
        "Manon",
        "Nathan",
        "Inès",
        "Théo",
        "Élodie",
        "Mathis",
        "Sarah",
    ],
}
LAST = {
    "US": [
        "Smith",
        "Johnson",
        "Williams",
        "Brown",
        "Jones",
        "Miller",
        "Davis",
        "Wilson",
        "Anderson",
        "Taylor",
        "Thomas",
        "Moore",
        "Martin",
        "Jackson",
        "Thompson",
        "White",
        "Harris",
        "Clark",
    ],
    "DE": [
        "Müller",
        "Schmidt",
        "Schneider",
        "Fischer",
        "Weber",
        "Meyer",
        "Wagner",
        "Becker",
        "Schulz",
        "Hoffmann",
        "Koch",
        "Richter",
        "Klein",
        "Wolf",
    ],
    "FR": [
        "Martin",
        "Bernard",
        "Dubois",
        "Thomas",
        "Robert",
        "Richard",
        "Petit",
        "Durand",
        "Leroy",
        "Moreau",
        "Simon",
        "Laurent",
        "Lefèvre",
        "Fontaine",
    ],
}
MERCHANTS = {
    "AIRFR": ["Delta Air Lines", "Lufthansa", "Air France", "United Airlines", "KLM"],
    "TAXI": ["Uber", "Yellow Cab", "G7 Taxi", "FreeNow"],
    "LODNG": ["Marriott", "Hilton", "Novotel", "Motel One", "Hyatt"],
    "MEALS": ["Starbucks", "Le Petit Bistro", "Vapiano", "Chipotle", "Café Central"],
    "CARMI": ["Private car"],
    "OFCSP": ["Staples", "Office Depot", "Bureau Vallée"],
    "PHONE": ["Verizon", "Telekom", "Orange"],
    "TRNG": ["Coursera", "O'Reilly Media", "Udemy", "GoTo Academy"],
    "ENTMT": ["The Capital Grille", "Brasserie Lipp", "Steakhaus Alt-Berlin"],
    "SUBSC": ["GitHub", "Atlassian", "Figma", "Slack"],
}
CITIES = {
    "US": ["New York", "Chicago", "Seattle", "Austin", "Boston"],
    "DE": ["Berlin", "München", "Hamburg", "Frankfurt"],
    "FR": ["Paris", "Lyon", "Toulouse", "Nantes"],
}
FX = {
    ("USD", "EUR"): Decimal("0.92"),
    ("EUR", "USD"): Decimal("1.09"),
    ("EUR", "GBP"): Decimal("1.17"),
    ("USD", "GBP"): Decimal("1.27"),
    ("EUR", "CHF"): Decimal("1.05"),
}


def stable_id(*parts: object, length: int = 32) -> str:
    """A deterministic hex id (vendor ids are opaque; ours must not change between runs)."""
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:length].upper()


def stable_guid(*parts: object) -> str:
    h = hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def seeded_until(today: date) -> datetime:
    """The latest moment a seeded event may carry: the last second before ``today`` starts (UTC)."""
    return datetime.combine(today, time(0), UTC) - timedelta(seconds=1)


def month_start(d: date, delta_months: int = 0) -> date:
    m = d.month - 1 + delta_months
    return date(d.year + m // 12, m % 12 + 1, 1)


def month_end(d: date) -> date:
    return date(d.year, d.month, calendar.monthrange(d.year, d.month)[1])


@dataclass
class Employee:
    code: str
    entity: str
    first: str
    last: str
    email: str
    status: str  # Active / Terminated
    cost_center: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass
class Line:
    entry_id: str
    allocation_id: str
    date: date
    expense_type: str
    expense_type_name: str
    gl_account: str
    description: str
    merchant: str
    city: str
    amount: Decimal  # report currency
    original_amount: Decimal
    original_currency: str
    cost_center: str
    project: str
    tax_code: str
    problem: str = ""


@dataclass
class Report:
    doc_id: str  # FIS transaction id
    report_id: str
    report_key: int
    number: str
    name: str
    entity: str
    currency: str
    employee: Employee
    submitted: date
    approved: date
    lines: list[Line] = field(default_factory=list)
    malformed: str = ""  # "" or what is wrong with it

    @property
    def total(self) -> Decimal:
        return sum((ln.amount for ln in self.lines), Decimal("0"))


@dataclass
class Period:
    entity: str
    start: date
    end: date
    closed: bool

    @property
    def code(self) -> str:
        return f"{self.start:%Y-%m}"


@dataclass
class World:
    today: date
    entities: list[tuple]
    cost_centers: list[tuple]
    employees: list[Employee]
    periods: list[Period]
    projects: dict[str, list[tuple[str, str]]]
    reports: list[Report]

    def employees_of(self, entity: str) -> list[Employee]:
        return [e for e in self.employees if e.entity == entity]

    def problem_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.reports:
            for ln in r.lines:
                if ln.problem:
                    counts[ln.problem] = counts.get(ln.problem, 0) + 1
            if r.malformed:
                counts["malformed"] = counts.get("malformed", 0) + 1
        return counts


def _money(rng: random.Random, lo: int, hi: int) -> Decimal:
    return (Decimal(rng.randint(lo * 100, hi * 100)) / 100).quantize(Decimal("0.01"))


PLANTED = [
    "missing_cost_center",
    "unknown_cost_center",
    "closed_period",
    "invalid_tax_code",
    "blocked_cost_center",
    "blocked_gl_account",
    "heading_gl_account",
]


def _ensure_each_problem_alone(reports: list[Report], closed_month: date, rng: random.Random) -> None:
    """Even a small world shows every problem at least once on its own (demos and tests rely on it)."""
    clean = [
        r
        for i, r in enumerate(reports)
        if i not in (6, 12) and r.employee.status == "Active" and not any(ln.problem for ln in r.lines)
    ]
    for kind in PLANTED:
        if any({ln.problem for ln in r.lines if ln.problem} == {kind} for r in reports) or not clean:
            continue
        ln = clean.pop(len(clean) // 2).lines[0]
        ln.problem = kind
        if kind == "missing_cost_center":
            ln.cost_center = ""
        elif kind == "unknown_cost_center":
            ln.cost_center = UNKNOWN_COST_CENTERS[0]
        elif kind == "closed_period":
            ln.date = closed_month + timedelta(days=10)
        elif kind == "invalid_tax_code":
            ln.tax_code = INVALID_TAX_CODES["DE"]  # a tax code no entity has
        elif kind == "blocked_gl_account":
            ln.gl_account = next(iter(BLOCKED_ACCOUNTS))  # an expense type still coded to the retired account
        elif kind == "heading_gl_account":
            ln.gl_account = next(a for a, t in ACCOUNT_TYPES.items() if t == "Heading")  # coded to the heading
        else:
            ln.cost_center = BLOCKED_COST_CENTER[0]


def build_world(
    *,
    seed: int = 42,
    today: date | None = None,
    n_employees: int = 200,
    n_lines: int = 2000,
    problem_rate: float = 0.07,
) -> World:
    """Build the whole demo world. Same arguments, same world."""
    today = today or date.today()
    rng = random.Random(seed)

    # Periods: twelve months back to three ahead; everything before the previous month is closed.
    periods: list[Period] = []
    first_open = month_start(today, -1)
    for code, *_ in ENTITIES:
        for k in range(-12, 4):
            start = month_start(today, k)
            periods.append(Period(code, start, month_end(start), closed=start < first_open))

    employees: list[Employee] = []
    for i in range(n_employees):
        roll = rng.random()
        acc = 0.0
        ent = ENTITIES[-1]
        for e in ENTITIES:
            acc += e[4]
            if roll < acc:
                ent = e
                break
        country = ent[3]
        first, last = rng.choice(FIRST[country]), rng.choice(LAST[country])
        code = f"E{i + 1:04d}"
        email = f"{first}.{last}.{code}".lower().encode("ascii", "ignore").decode() + "@northwind.example"
        employees.append(Employee(code, ent[0], first, last, email, "Active", rng.choice(COST_CENTERS)[0]))
    # A few leavers who still had reports approved before their exit.
    leavers = rng.sample(range(n_employees), k=max(1, n_employees // 60))
    for i in leavers:
        employees[i].status = "Terminated"

    projects = {
        e[0]: [
            (f"PRJ-{e[0][-2:]}{100 + k}", f"{name} ({e[0]})")
            for k, name in enumerate(
                ["ERP Rollout", "Customer Summit", "Product Launch", "Office Move", "Security Audit", "Partner Program"]
            )
        ]
        for e in ENTITIES
    }

    reports: list[Report] = []
    last_day = today - timedelta(days=1)  # the last day anything was submitted or approved
    period_start = month_start(today, -1)
    span = (today - period_start).days or 1
    closed_month = month_start(today, -2)
    line_count = 0
    r_index = 0
    active = [e for e in employees if e.status == "Active"]
    terminated = [e for e in employees if e.status != "Active"]
    while line_count < n_lines:
        r_index += 1
        emp = rng.choice(terminated) if terminated and rng.random() < 0.012 else rng.choice(active)
        ent = next(e for e in ENTITIES if e[0] == emp.entity)
        currency, country = ent[2], ent[3]
        n = min(rng.randint(1, 8), n_lines - line_count)
        first_day = period_start + timedelta(days=rng.randint(0, max(0, span - 3)))
        city = rng.choice(CITIES[country])
        report = Report(
            doc_id=stable_id("fis", seed, r_index),
            report_id=stable_id("rpt", seed, r_index, length=20),
            report_key=1000 + r_index,
            number=stable_id("num", seed, r_index, length=6),
            name=rng.choice(["Trip to", "Visit", "Conference", "Client meeting", "Workshop"]) + f" {city}",
            entity=emp.entity,
            currency=currency,
            employee=emp,
            submitted=min(last_day, first_day + timedelta(days=rng.randint(1, 6))),
            approved=last_day,
            lines=[],
        )
        report.approved = min(last_day, report.submitted + timedelta(days=rng.randint(0, 3)))
        for j in range(n):
            et = rng.choice(EXPENSE_TYPES)
            amount = _money(rng, *et[3])
            orig_cur, orig_amt = currency, amount
            if rng.random() < 0.08:
                orig_cur = rng.choice([c for c in ("USD", "EUR", "GBP", "CHF") if c != currency])
                rate = FX.get((currency, orig_cur), Decimal("1.10"))
                orig_amt = (amount / rate).quantize(Decimal("0.01"))
            line_date = min(report.submitted, first_day + timedelta(days=rng.randint(0, 3)))
            tax = rng.choice(TAX_CODES[country])[0]
            proj = rng.choice(projects[emp.entity])[0] if rng.random() < 0.25 else ""
            ln = Line(
                entry_id=stable_id("entry", seed, r_index, j),
                allocation_id=stable_id("alloc", seed, r_index, j),
                date=line_date,
                expense_type=et[0],
                expense_type_name=et[1],
                gl_account=et[2],
                description=f"{et[1]} - {city}",
                merchant=rng.choice(MERCHANTS[et[0]]),
                city=city,
                amount=amount,
                original_amount=orig_amt,
                original_currency=orig_cur,
                cost_center=emp.cost_center if rng.random() < 0.85 else rng.choice(COST_CENTERS)[0],
                project=proj,
                tax_code=tax,
            )
            if emp.status != "Active":
                ln.problem = "inactive_employee"
            elif rng.random() < problem_rate * 0.8:
                kind = rng.choices(
                    [
                        "missing_cost_center",
                        "unknown_cost_center",
                        "closed_period",
                        "invalid_tax_code",
                        "blocked_cost_center",
                    ],
                    weights=[3, 2.5, 2, 1.5, 1],
                )[0]
                ln.problem = kind
                if kind == "missing_cost_center":
                    ln.cost_center = ""
                elif kind == "unknown_cost_center":
                    ln.cost_center = rng.choice(UNKNOWN_COST_CENTERS)
                elif kind == "closed_period":
                    ln.date = closed_month + timedelta(days=rng.randint(0, 27))
                    ln.description = f"{et[1]} - {city} (late claim)"
                elif kind == "invalid_tax_code":
                    ln.tax_code = INVALID_TAX_CODES[country]
                else:
                    ln.cost_center = BLOCKED_COST_CENTER[0]
            report.lines.append(ln)
        line_count += n
        reports.append(report)

    _ensure_each_problem_alone(reports, closed_month, rng)

    # Two documents that break the vendor's schema (kept deterministic: the 7th and 13th reports).
    for idx, what in ((6, "amount_not_a_number"), (12, "missing_report_section")):
        if idx < len(reports):
            reports[idx].malformed = what

    return World(
        today=today,
        entities=list(ENTITIES),
        cost_centers=list(COST_CENTERS) + [BLOCKED_COST_CENTER],
        employees=employees,
        periods=periods,
        projects=projects,
        reports=reports,
    )
