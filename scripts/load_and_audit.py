#!/usr/bin/env python3
"""Drives a running Order Aggregator as its users would, breaks it as operators fear,
and audits the promises. scripts/compose-test.sh (the composed system, its worker and
database containers broken) and scripts/rabbitmq-cluster-test.sh (host processes on a
three-node RabbitMQ cluster, nodes stopped) run it.

1. Stock: three products with 260 units over two vendors, synced into the catalog.
2. Load: clients place one-unit orders under Idempotency-Keys (more than the stock),
   cancel every fifth order they placed, and retry the same key on any transport error
   or 5xx. Each --fault command runs once the given share of the orders was answered
   (e.g. `--fault "0.33=docker kill worker"`).
3. Audit, once every order has ended: nothing told success is lost, no unit told
   success failed for stock (oversold), no live vendor order that is not a placement of
   a confirmed order (ghost, duplicates included), no confirmed placement missing at its
   vendor, the vendors' books balance, and the store holds nothing back (outbox, held and
   reserved units, pending cancellations). Every figure must be 0.
4. Monitoring (with --prometheus): every rule is loaded, every target is up, no alert
   fires on the healthy system; then VendorA goes down and its alert must fire. The
   Grafana dashboard's queries must name only metrics the system exported.

Only the Python standard library; every loop is bounded and stops by itself.
"""

import argparse
import json
import re
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

PRODUCTS = [
    # product, VendorA SKU, VendorB SKU, VendorA units, VendorB units
    ("LAPTOP-001", "LAPTOP-a-001", "LAPTOP-b-001", 60, 40),
    ("TABLET-003", "TABLET-a-003", "TABLET-b-003", 50, 30),
    ("MOUSE-007", "MOUSE-a-007", "MOUSE-b-007", 40, 40),
]
TERMINAL = {"confirmed", "failed", "cancelled", "expired"}
STOCK_FAILURES = ("cannot serve", "refused the order", "kept refusing")


NAME = "load-and-audit"


def log(message):
    print(f"[{NAME}] {message}", flush=True)


def call(method, url, body=None, key=None, idempotency_key=None, timeout=15):
    """(status, parsed body) or (None, reason) on a transport error."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    if idempotency_key:
        request.add_header("Idempotency-Key", idempotency_key)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text.strip().startswith(("{", "[")) else text
    except urllib.error.HTTPError as error:
        text = error.read().decode(errors="replace")
        try:
            return error.code, json.loads(text)
        except ValueError:
            return error.code, text
    except (urllib.error.URLError, OSError, ValueError) as error:
        return None, str(error)


def wait_until(what, seconds, check, every=1.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    raise SystemExit(f"[{NAME}] FAILED: {what} within {seconds} s")


def run(command, *args):
    """Runs `command` (a shell-quoted string) with `args` appended; its output."""
    completed = subprocess.run(
        shlex.split(command) + list(args), capture_output=True, text=True, timeout=300
    )
    if completed.returncode != 0:
        raise SystemExit(f"[{NAME}] FAILED: {command} {' '.join(args)}: {completed.stderr.strip()}")
    return completed.stdout


class Shell:
    """The commands that reach the store's SQL and a worker's metrics."""

    def __init__(self, sql, worker_metrics):
        self.sql_command = sql
        self.worker_metrics = worker_metrics

    def sql(self, statement):
        return run(self.sql_command, statement).strip()


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.told_success = {}  # order id -> key
        self.refused = 0
        self.unanswered = []  # keys with no final answer
        self.retries = 0
        self.cancel_requests = 0
        self.unauthenticated_2xx = 0


def place(args, ledger, client, key, product, deadline):
    """Places one order under `key`, retrying the same key until a final answer."""
    body = {
        "customerId": "test",
        "customerEmail": "audit@example.com",
        "items": [{"sku": product, "quantity": 1}],
        "shippingAddress": {"street": "1 Main St", "city": "Boston", "zipCode": "02101", "country": "USA"},
        "paymentMethod": "credit_card",
    }
    while time.monotonic() < deadline:
        status, answer = call("POST", f"{args.api}/api/orders", body, args.client_key, key)
        if status in (200, 201):
            order_id = answer.get("orderId") or answer["data"]["order"]["id"]
            with ledger.lock:
                ledger.told_success[order_id] = key
            return order_id
        if status is not None and 400 <= status < 500 and status != 429:
            with ledger.lock:
                ledger.refused += 1
            return None
        with ledger.lock:
            ledger.retries += 1
        time.sleep(0.2)
    with ledger.lock:
        ledger.unanswered.append((key, product))
    return None


def shop(args, ledger, client, attempts, deadline):
    placed = 0
    for n in range(attempts):
        # Paced, so that the faults land in the middle of the load, not after it.
        time.sleep(args.pause)
        product = PRODUCTS[(n + client) % len(PRODUCTS)][0]
        order_id = place(args, ledger, client, f"{args.run}-{client}-{n}", product, deadline)
        if order_id:
            placed += 1
            if placed % 5 == 0:
                for _ in range(50):
                    status, _ = call(
                        "POST",
                        f"{args.api}/api/orders/{order_id}/cancel",
                        {"reason": "changed my mind"},
                        args.client_key,
                        f"{args.run}-cancel-{order_id}",
                    )
                    if status is not None and status < 500:
                        with ledger.lock:
                            ledger.cancel_requests += 1
                        break
                    time.sleep(0.2)


def all_orders(args):
    orders, page = {}, 1
    while True:
        status, answer = call("GET", f"{args.api}/api/orders?page={page}&limit=100", key=args.admin_key)
        if status != 200:
            return None
        items = answer["data"]["orders"]
        for order in items:
            orders[order["id"]] = order
        if len(items) < 100:
            return orders
        page += 1


def vendor_records(url):
    status, answer = call("GET", f"{url}/simulate/orders")
    if status != 200:
        raise SystemExit(f"[{NAME}] FAILED: {url}/simulate/orders answered {status}")
    return answer["orders"]


def vendor_stock(url):
    status, answer = call("GET", f"{url}/stock?limit=10000")
    if status != 200:
        raise SystemExit(f"[{NAME}] FAILED: {url}/stock answered {status}")
    rows = answer if isinstance(answer, list) else answer.get("data", answer.get("items", []))
    return {row["sku"]: row["quantity"] for row in rows}


def set_up_stock(args):
    vendors = {"VendorA": args.vendor_a, "VendorB": args.vendor_b}
    initial = {}
    for product, sku_a, sku_b, units_a, units_b in PRODUCTS:
        for vendor, sku, units in (("VendorA", sku_a, units_a), ("VendorB", sku_b, units_b)):
            status, answer = call("POST", f"{vendors[vendor]}/simulate/stock", {"sku": sku, "quantity": units})
            if status != 200:
                raise SystemExit(f"[{NAME}] FAILED: setting {vendor} {sku}: {status} {answer}")
            initial[(vendor, sku)] = units
    for vendor in vendors:
        status, answer = call("POST", f"{args.api}/api/ops/stock-sync", {"vendor": vendor}, args.admin_key)
        if status not in (200, 202):
            raise SystemExit(f"[{NAME}] FAILED: sync of {vendor}: {status} {answer}")

    def synced():
        for product, _, _, units_a, units_b in PRODUCTS:
            status, answer = call("GET", f"{args.api}/api/products/{product}", key=args.admin_key)
            if status != 200:
                return False
            if json.dumps(answer).count('"available"') == 0:
                return False
            available = answer["data"]["product"].get("available", answer["data"]["product"].get("totalAvailable"))
            if available != units_a + units_b:
                return False
        return True

    wait_until("the catalog shows the vendors' stock", 60, synced)
    return initial


def audit(args, shell, ledger, initial):
    orders = all_orders(args)
    if orders is None:
        return None
    figures = {
        "lost": 0, "oversold_units": 0, "not_terminal": 0, "ghost_vendor_orders": 0,
        "missing_vendor_orders": 0, "vendor_units_mismatch": 0, "outbox_left": 0,
        "held_units": 0, "reserved_units": 0, "cancellations_pending": 0,
        "unauthenticated_2xx": ledger.unauthenticated_2xx,
    }
    by_status = {}
    for order in orders.values():
        by_status[order["status"]] = by_status.get(order["status"], 0) + 1
        if order["status"] not in TERMINAL:
            figures["not_terminal"] += 1
    for order_id in ledger.told_success:
        order = orders.get(order_id)
        if order is None:
            figures["lost"] += 1
        elif order["status"] == "failed" and any(
            needle in (order.get("failureReason") or "") for needle in STOCK_FAILURES
        ):
            figures["oversold_units"] += 1
    placements = {
        (p["vendor"], p["vendorOrderId"])
        for order in orders.values()
        if order["status"] == "confirmed"
        for p in order.get("vendorPlacements", [])
    }
    live = set()
    for vendor, url in (("VendorA", args.vendor_a), ("VendorB", args.vendor_b)):
        records = vendor_records(url)
        taken = {}
        for record in records:
            if record["status"] != "confirmed":
                continue
            live.add((vendor, record["orderId"]))
            if (vendor, record["orderId"]) not in placements:
                figures["ghost_vendor_orders"] += 1
            for line in record["lines"]:
                taken[line["sku"]] = taken.get(line["sku"], 0) + line["quantity"]
        stock = vendor_stock(url)
        for (owner, sku), units in initial.items():
            if owner == vendor and stock.get(sku) != units - taken.get(sku, 0):
                figures["vendor_units_mismatch"] += 1
    figures["missing_vendor_orders"] = len(placements - live)
    figures["outbox_left"] = int(shell.sql("SELECT count(*) FROM outbox"))
    figures["held_units"] = int(shell.sql("SELECT COALESCE(sum(quantity), 0) FROM cancelling_units"))
    figures["reserved_units"] = int(shell.sql("SELECT COALESCE(sum(reserved), 0) FROM vendor_stock"))
    figures["cancellations_pending"] = int(shell.sql("SELECT count(*) FROM pending_vendor_cancellations"))
    return figures, by_status


def load_and_audit(args, shell):
    initial = set_up_stock(args)
    log(f"stock set: {sum(initial.values())} units over {len(PRODUCTS)} products, catalog synced")
    ledger = Ledger()
    started = time.monotonic()
    deadline = started + args.seconds
    threads = [
        threading.Thread(target=shop, args=(args, ledger, client, args.orders // args.clients, deadline + 60))
        for client in range(args.clients)
    ]
    for thread in threads:
        thread.start()

    def placed():
        with ledger.lock:
            return len(ledger.told_success) + ledger.refused

    faults = []
    for share, command in args.fault:
        wanted = int(args.orders * share)
        wait_until(f"{wanted} answered orders", args.seconds, lambda: placed() >= wanted, every=0.1)
        log(f"{placed()} orders answered; {command}")
        completed = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=300)
        if completed.returncode != 0:
            raise SystemExit(f"[{NAME}] FAILED: {command}: {completed.stderr.strip()}")
        faults.append(f"{command!r} at {time.monotonic() - started:.1f} s")
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    log(
        f"load done in {elapsed:.1f} s: {len(ledger.told_success)} placed, {ledger.refused} refused, "
        f"{ledger.retries} retries, {len(ledger.unanswered)} unanswered, {ledger.cancel_requests} cancels"
    )
    if ledger.unanswered:
        raise SystemExit(f"[{NAME}] FAILED: no final answer for {len(ledger.unanswered)} keys")

    def settled():
        result = audit(args, shell, ledger, initial)
        if result is None:
            return None
        figures, by_status = result
        return (figures, by_status) if all(v == 0 for v in figures.values()) else None

    try:
        figures, by_status = wait_until("every order ended and every figure is 0", args.settle, settled, every=2)
    except SystemExit:
        result = audit(args, shell, ledger, initial)
        log(f"last audit: {result}")
        raise
    log(f"orders by status: {json.dumps(by_status, sort_keys=True)}")
    log(f"audit: {json.dumps(figures, sort_keys=True)} (faults: {'; '.join(faults)})")
    if by_status.get("confirmed", 0) > sum(initial.values()):
        raise SystemExit(f"[{NAME}] FAILED: more orders confirmed than units exist")
    if ledger.refused == 0:
        raise SystemExit(f"[{NAME}] FAILED: the load never ran the stock out, so it proved nothing")


def exported_names(args, shell):
    """Every metric name the API process and a worker export now."""
    status, api_text = call("GET", f"{args.api}/metrics", key=args.admin_key)
    if status != 200:
        raise SystemExit(f"[{NAME}] FAILED: the API's /metrics answered {status}")
    worker_text = run(shell.worker_metrics) if shell.worker_metrics else ""
    names = set()
    for line in (str(api_text) + "\n" + worker_text).splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


# Metrics exported only where their feature runs, so a healthy run cannot show
# them: the read replica's counter needs DATABASE_READ_URL.
ONLY_WITH_FEATURE = {"aggregator_replica_reads_total": "needs a read replica (DATABASE_READ_URL)"}


def check_queries(what, expressions, names):
    missing = []
    for expression in expressions:
        for name in set(re.findall(r"\b((?:aggregator|http)_[a-z_]+)\b", expression)):
            if name not in names and name not in ONLY_WITH_FEATURE:
                missing.append(name)
    if missing:
        raise SystemExit(f"[{NAME}] FAILED: {what} name metrics the system does not export: {sorted(set(missing))}")
    log(f"{what}: {len(expressions)} queries, every metric they name is exported")


def monitoring(args, shell):
    prometheus = args.prometheus

    def loaded():
        status, answer = call("GET", f"{prometheus}/api/v1/rules")
        if status != 200:
            return None
        rules = [r for g in answer["data"]["groups"] for r in g["rules"] if r["type"] == "alerting"]
        return rules if len(rules) >= args.rules else None

    rules = wait_until("Prometheus loads the alert rules", 60, loaded)

    def targets_up():
        status, answer = call("GET", f"{prometheus}/api/v1/targets")
        if status != 200:
            return None
        active = answer["data"]["activeTargets"]
        jobs = {t["labels"]["job"] for t in active if t["health"] == "up"}
        return active if {"aggregator-api", "aggregator-worker"} <= jobs and all(t["health"] == "up" for t in active) else None

    targets = wait_until("every scrape target is up", 90, targets_up)
    log(f"Prometheus: {len(rules)} alert rules loaded, {len(targets)} targets up")

    names = exported_names(args, shell)
    check_queries("alert rules", [r["query"] for r in rules], names)
    with open(args.dashboard) as file:
        dashboard = json.load(file)
    panels = [p for p in dashboard["panels"] if p.get("type") != "row"]
    expressions = [t["expr"] for p in panels for t in p.get("targets", [])]
    if not expressions or any(not p.get("targets") for p in panels):
        raise SystemExit(f"[{NAME}] FAILED: a dashboard panel has no query")
    check_queries("Grafana dashboard", expressions, names)

    def firing():
        status, answer = call("GET", f"{prometheus}/api/v1/alerts")
        if status != 200:
            return []
        return [a for a in answer["data"]["alerts"] if a["state"] == "firing"]

    already = firing()
    if already:
        raise SystemExit(f"[{NAME}] FAILED: alerts fire on a healthy system: {already}")
    status, _ = call("POST", f"{args.vendor_a}/simulate/fault", {"outage": True})
    if status != 200:
        raise SystemExit(f"[{NAME}] FAILED: could not take VendorA down")
    started = time.monotonic()
    log("VendorA is down (every request answered 503); waiting for its alert")

    def vendor_alert():
        return [
            a for a in firing()
            if a["labels"].get("alertname") == "AggregatorVendorDegraded" and a["labels"].get("vendor") == "VendorA"
        ]

    alert = wait_until("AggregatorVendorDegraded fires for VendorA", 180, vendor_alert, every=2)
    log(f"alert firing {time.monotonic() - started:.1f} s after the outage began: {alert[0]['labels']}")
    others = [a["labels"] for a in firing() if a["labels"].get("vendor") not in (None, "VendorA")]
    if others:
        raise SystemExit(f"[{NAME}] FAILED: alerts fired for healthy vendors: {others}")
    call("POST", f"{args.vendor_a}/simulate/reset")


def fault(text):
    share, _, command = text.partition("=")
    try:
        value = float(share)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: SHARE must be a number, as in 0.33=COMMAND")
    if not 0 < value < 1 or not command.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: want SHARE=COMMAND with 0 < SHARE < 1")
    return value, command


def main():
    global NAME
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True)
    parser.add_argument("--vendor-a", required=True)
    parser.add_argument("--vendor-b", required=True)
    parser.add_argument("--sql", required=True, help="a command that runs the SQL statement appended to it in the store, printing rows unaligned (psql -At -c)")
    parser.add_argument("--fault", action="append", default=[], type=fault, help="SHARE=COMMAND: run COMMAND once SHARE (0..1) of the orders were answered")
    parser.add_argument("--worker-metrics", help="a command printing a worker's /metrics (for the dashboard check)")
    parser.add_argument("--name", default="load-and-audit", help="how log lines start")
    parser.add_argument("--admin-key", default="change-me-admin-key-000")
    parser.add_argument("--client-key", default="change-me-client-key-00")
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--pause", type=float, default=0.15, help="seconds a client waits between orders")
    parser.add_argument("--seconds", type=float, default=120, help="at most this long for the load")
    parser.add_argument("--settle", type=float, default=180, help="at most this long for every order to end")
    parser.add_argument("--run", default=f"audit-{int(time.time())}", help="prefix of every Idempotency-Key")
    parser.add_argument("--prometheus")
    parser.add_argument("--rules", type=int, default=10)
    parser.add_argument("--dashboard", default="deploy/grafana/order-aggregator.json")
    args = parser.parse_args()
    NAME = args.name
    shell = Shell(args.sql, args.worker_metrics)
    load_and_audit(args, shell)
    if args.prometheus:
        monitoring(args, shell)
    log("passed")


if __name__ == "__main__":
    sys.exit(main())
