"""The requisition validation endpoint (the procurement suite's synchronous Call Out) under load.

    DATABASE_URL=postgres://... .venv/bin/python bench/validate_latency.py --clients 20 --requests 100

Seeds master data (3 entities' cost centers, suppliers, contracts, budgets and 2,000 POs that commit
budget), starts the web app as in production (gunicorn, 4 workers x 4 threads) on that database, and
sends `--clients` concurrent clients' requisitions (valid and invalid mixed) with token auth.
Prints p50/p95/p99 latency for one client (what a requester waits for; target p95 under 50 ms) and for
`--clients` concurrent clients, with requests/s.
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal

from _setup import ROOT, django_with_fresh_db, teardown


def seed():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from tests.factories import master_data
    from workbench.models import (
        ApiToken,
        Budget,
        CostCenter,
        Document,
        DocumentLine,
        PurchaseCategory,
        Supplier,
        SupplierContract,
        UserScope,
    )
    from workbench.roles import CALLOUT

    today = date.today()
    for code, cur in (("NW-US", "USD"), ("NW-DE", "EUR"), ("NW-FR", "EUR")):
        entity = master_data(code, cur)
        for cc in ("ADM", "OPS", "IT", "LEGAL", "HR"):
            CostCenter.objects.get_or_create(entity=entity, code=cc, defaults={"name": cc})
        Supplier.objects.bulk_create(
            [
                Supplier(
                    entity=entity,
                    code=f"V{code[-2:]}{i:03d}",
                    name=f"Supplier {i}",
                    blocked="All" if i % 25 == 0 else "",
                )
                for i in range(100)
            ]
        )
        Budget.objects.bulk_create(
            [
                Budget(
                    entity=entity,
                    cost_center=cc.code,
                    gl_account=acct,
                    period=f"{today:%Y-%m}",
                    amount=Decimal(100000),
                    currency=cur,
                )
                for cc in CostCenter.objects.filter(entity=entity)
                for acct in ("6110", "6120", "6130")
            ]
        )
        pos = Document.objects.bulk_create(
            [
                Document(
                    kind="purchase_order",
                    correlation_id=uuid.uuid4(),
                    source_system="bench",
                    source_id=f"{code}-PO{i}",
                    number=f"{code}-PO{i}",
                    po_number=f"{code}-PO{i}",
                    entity=entity,
                    entity_code=code,
                    currency=cur,
                    total=Decimal(500),
                    document_date=today,
                    financial_status="posted",
                )
                for i in range(700)
            ]
        )
        DocumentLine.objects.bulk_create(
            [
                DocumentLine(
                    document=po,
                    line_no=1,
                    amount=Decimal(500),
                    currency=cur,
                    quantity=Decimal(5),
                    unit_price=Decimal(100),
                    gl_account="6110",
                    cost_center="IT",
                )
                for po in pos
            ]
        )
    PurchaseCategory.objects.create(code="IT-HW", name="IT hardware", gl_account="6110")
    PurchaseCategory.objects.create(
        code="PROF-SVC", name="Professional services", gl_account="6130", contract_required=True
    )
    SupplierContract.objects.bulk_create(
        [
            SupplierContract(
                number=f"C{e}{i}",
                supplier_code=f"V{e}{i:03d}",
                category="PROF-SVC",
                start=today - timedelta(days=30),
                end=today + timedelta(days=300),
            )
            for e in ("US", "DE", "FR")
            for i in range(0, 100, 2)
        ]
    )
    user = get_user_model().objects.create_user("callout")
    user.groups.add(Group.objects.get(name=CALLOUT))  # the Call Out's role: validate only
    UserScope.objects.create(user=user, all_entities=True)
    return ApiToken.issue(user, "bench")[1]


def body(rng: random.Random) -> dict:
    entity = rng.choice(["NW-US", "NW-DE", "NW-FR"])
    cur = "USD" if entity == "NW-US" else "EUR"
    lines = []
    for _ in range(rng.randint(1, 4)):
        cat = rng.choice(["IT-HW", "IT-HW", "PROF-SVC"])
        lines.append(
            {
                "description": "Item",
                "category": cat,
                "quantity": str(rng.randint(1, 10)),
                "unit_price": f"{rng.randint(50, 3000)}.00",
                "gl_account": "6110" if cat == "IT-HW" else "6130",
                "cost_center": rng.choice(["IT", "OPS", "ADM", "SALE"]),
                "supplier_code": f"V{entity[-2:]}{rng.randint(0, 99):03d}",
                "need_by_date": (date.today() + timedelta(days=10)).isoformat(),
            }
        )
    return {
        "external_id": f"r{rng.random()}",
        "entity": entity,
        "requester_code": "E0001",
        "currency": cur,
        "title": "Bench",
        "lines": lines,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=100, help="per client")
    args = ap.parse_args()
    connection, name = django_with_fresh_db()
    import requests

    from tests.conftest import free_port, wait_http

    token = seed()
    settings = connection.settings_dict
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=f"postgres://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST']}:{settings['PORT']}/{name}",
    )
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "workbench.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "4",
            "--threads",
            "4",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/api/p2p/requisitions/validate/"
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", 60)
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        lock = threading.Lock()

        def client(seed: int, n: int, record: bool) -> None:
            rng = random.Random(seed)
            s = requests.Session()
            s.headers["Authorization"] = f"Token {token}"
            for _ in range(n):
                t = time.perf_counter()
                r = s.post(url, json=body(rng), timeout=10)
                dt = time.perf_counter() - t
                if record:
                    with lock:
                        latencies.append(dt)
                        key = r.json().get("status", str(r.status_code)) if r.status_code == 200 else str(r.status_code)
                        statuses[key] = statuses.get(key, 0) + 1

        warm = [threading.Thread(target=client, args=(1000 + i, 10, False)) for i in range(args.clients)]
        [t.start() for t in warm]
        [t.join() for t in warm]
        # One requester at a time: what a person submitting a requisition waits for.
        client(7, 300, True)
        q = statistics.quantiles(latencies, n=100)
        print(
            f"1 client: {len(latencies)} validations, p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, "
            f"p99 {q[98] * 1000:.1f} ms"
        )
        latencies.clear()
        statuses.clear()
        threads = [threading.Thread(target=client, args=(i, args.requests, True)) for i in range(args.clients)]
        t0 = time.perf_counter()
        [t.start() for t in threads]
        [t.join() for t in threads]
        wall = time.perf_counter() - t0
        q = statistics.quantiles(latencies, n=100)
        print(
            f"{args.clients} concurrent clients: {len(latencies)} validations (gunicorn 4 workers x 4 threads, clients on the same 2 cores)"
        )
        print(
            f"  p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, "
            f"{len(latencies) / wall:,.0f} requests/s; answers: {statuses}"
        )
    finally:
        web.terminate()
        web.wait(10)
        teardown(connection, name)


if __name__ == "__main__":
    main()
