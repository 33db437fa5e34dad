"""The operator console in headless Chromium (driven by chromedriver through Selenium).

Run by scripts/console-browser.sh, which starts the system and the mock vendors and
passes their addresses. Every step waits for what the operator would see, and fails
with what the page showed instead. Screenshots go to SHOTS (docs/console by default).
"""

import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["CONSOLE_BASE"]
VENDOR_A = os.environ["CONSOLE_VENDOR_A"]
VENDOR_B = os.environ["CONSOLE_VENDOR_B"]
ADMIN = os.environ["CONSOLE_ADMIN_KEY"]
ALICE = os.environ["CONSOLE_ALICE_KEY"]
BOB = os.environ["CONSOLE_BOB_KEY"]
SHOTS = os.environ.get("CONSOLE_SHOTS", "")
LABEL = os.environ.get("CONSOLE_LABEL", "")
PATIENCE = 20


def call(method, url, key=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def place(key, customer, sku="LAPTOP-001"):
    status, body = call("POST", f"{BASE}/api/orders", key,
                        {"customerId": customer, "items": [{"sku": sku, "quantity": 1}]})
    assert status == 201, f"placing an order: {status} {body}"
    return body["orderId"]


def browser():
    options = webdriver.ChromeOptions()
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1366,900",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run",
                 # Any host but the server resolves to nothing: the page must need no CDN.
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]:
        options.add_argument(flag)
    # Explicit paths, so Selenium never looks for (or downloads) a browser or driver.
    options.binary_location = os.environ.get("AGGREGATOR_CHROMIUM") or shutil.which("chromium") or ""
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or ""
    if not options.binary_location or not driver:
        raise AssertionError("needs Debian's chromium and chromium-driver on the PATH")
    service = webdriver.ChromeService(executable_path=driver)
    return webdriver.Chrome(options=options, service=service)


def wait(driver, what, check):
    try:
        # The page redraws itself every few seconds: an element found a moment ago may
        # be gone; the check then simply runs again.
        return WebDriverWait(driver, PATIENCE, poll_frequency=0.2,
                             ignored_exceptions=(StaleElementReferenceException,)).until(check)
    except TimeoutException:
        problem = driver.find_element(By.ID, "problem").text
        body = driver.find_element(By.TAG_NAME, "main").text
        raise AssertionError(f"{what}: not seen within {PATIENCE} s\nproblem: {problem}\npage:\n{body[:3000]}")


def click(driver, what, by, selector):
    """Clicks the element, finding it again if the page redrew it meanwhile."""
    wait(driver, what, lambda d: d.find_element(by, selector).click() or True)


def text_of(driver, css):
    """The element's text, or None when it is not on the page. The page redraws itself
    every few seconds, so an element found a moment ago may be gone by the time its text
    is read: it is then found again (a few times, then it counts as not there)."""
    for _ in range(5):
        found = driver.find_elements(By.CSS_SELECTOR, css)
        if not found:
            return None
        try:
            return found[0].text
        except StaleElementReferenceException:
            time.sleep(0.1)
    return None


def read_all(driver, css, read):
    """`read` of every element matching `css`, all from one drawing of the page: when the
    page redraws itself while they are read, they are found and read again."""
    for _ in range(5):
        try:
            return [read(element) for element in driver.find_elements(By.CSS_SELECTOR, css)]
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise AssertionError(f"{css}: the page kept redrawing it while it was read")


def shot(driver, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def log_in(driver, key):
    driver.get(f"{BASE}/console/")
    if driver.find_element(By.ID, "nav").is_displayed():
        driver.find_element(By.ID, "logout").click()
    field = wait(driver, "the login form", lambda d: d.find_element(By.ID, "key"))
    field.send_keys(key)
    click(driver, "the log-in button", By.CSS_SELECTOR, "#login-form button[type=submit]")
    wait(driver, "the overview after logging in", lambda d: "Overview" in d.find_element(By.ID, "view").text)


def go(driver, route):
    driver.execute_script("location.hash = arguments[0]", route)


def watch_a_new_order(driver, mode):
    """Opens the orders page, sees it updated by `mode` (stream or polling), and watches an
    order placed through the API turn confirmed on it."""
    go(driver, "#/orders")
    wait(driver, f"the orders page updated by {mode}",
         lambda d: d.find_element(By.ID, "live").get_attribute("data-mode") == mode)
    order = place(ALICE, "alice")
    wait(driver, f"the new order turning confirmed on the orders page ({mode})",
         lambda d: text_of(d, f'tr[data-order="{order}"] .order-status') == "confirmed")
    return order


def main():
    driver = browser()
    try:
        # The login page: a labelled key field, nothing loaded from elsewhere.
        driver.get(f"{BASE}/console/")
        wait(driver, "the login form", lambda d: d.find_element(By.CSS_SELECTOR, "label[for=key]"))
        shot(driver, "login")

        log_in(driver, ADMIN)
        # Placements while the overview watches: the rate and the counts follow.
        first = place(ALICE, "alice")
        wait(driver, "a confirmed order counted on the overview",
             lambda d: (text_of(d, 'td[data-status="confirmed"]') or "0") != "0")
        for _ in range(5):
            place(ALICE, "alice")
        time.sleep(3.5)
        wait(driver, "the vendors on the overview, healthy and fresh",
             lambda d: text_of(d, 'tr[data-vendor="VendorA"] .vendor-health') == "healthy"
             and text_of(d, 'tr[data-vendor="VendorA"] .vendor-freshness') == "fresh")
        shot(driver, "overview")
        print("console: overview shows orders, queues and vendors")

        # The orders page follows the event stream: an order placed through the API turns
        # confirmed on it by itself (the poll timer does not redraw a page the stream
        # follows).
        watch_a_new_order(driver, "stream")
        shot(driver, "orders")
        print("console: an order placed through the API turned confirmed on the streamed page")

        # An update keeps what the operator is doing: a choice made but not sent, and focus.
        driver.execute_script("const s = document.getElementById('status-filter');"
                              "s.value = 'cancelled'; s.focus();")
        another = place(ALICE, "alice")
        wait(driver, "the next order shown by the stream",
             lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-order="{another}"]'))
        kept = driver.execute_script("const a = document.activeElement; return [a.id, a.value];")
        assert kept == ["status-filter", "cancelled"], f"after an update the focus and choice were {kept}"
        driver.execute_script("document.activeElement.blur()")
        print("console: an update kept the focused filter and its unsent choice")

        # Open details stay open when the order changes under them: with both vendors slow
        # (1.2 s, under the example's 2 s request timeout)
        # the order waits, reserved, while its timeline is open, then turns confirmed.
        for vendor in (VENDOR_A, VENDOR_B):
            assert call("POST", f"{vendor}/simulate/fault", None, {"latencyMs": 1200})[0] == 200
        # The details must have been opened while the order was still reserved, or the
        # check proves nothing; a machine too slow for that tries another order.
        for _ in range(3):
            slow = place(ALICE, "alice")
            go(driver, f"#/order/{slow}")
            wait(driver, "the slow order's page", lambda d: text_of(d, "#order-status") is not None
                 and d.find_elements(By.CSS_SELECTOR, "details#timeline summary"))
            click(driver, "the timeline's summary", By.CSS_SELECTOR, "details#timeline summary")
            if text_of(driver, "#order-status") == "reserved":
                break
        else:
            raise AssertionError("three slow orders were confirmed before their page opened")
        wait(driver, "the slow order confirmed on its page", lambda d: text_of(d, "#order-status") == "confirmed")
        for vendor in (VENDOR_A, VENDOR_B):
            call("POST", f"{vendor}/simulate/reset", None, {})
        assert driver.execute_script("return document.getElementById('timeline').open"), \
            "the open timeline closed when the order changed"
        assert "confirmed" in driver.find_element(By.ID, "timeline").text
        print("console: an order's open timeline stayed open while the stream updated it")

        # A stream that is refused (here every /api/events request answers 429, as for a
        # key with too many streams open) falls back to polling, which still updates.
        driver.execute_script("""
            const real = window.fetch;
            window.fetch = (url, options) => String(url).includes('/api/events')
              ? Promise.resolve(new Response('{}', { status: 429 })) : real(url, options);""")
        go(driver, "#/overview")
        watch_a_new_order(driver, "polling")
        print("console: a refused stream fell back to polling, which showed the new order")

        # Cancel one from the page, with a reason; the timeline shows it.
        go(driver, f"#/order/{first}")
        wait(driver, "the order page", lambda d: d.find_elements(By.ID, "cancel-reason"))
        # Once the field has focus the page stops redrawing itself (it would wipe the text).
        wait(driver, "the reason typed", lambda d: d.find_element(By.ID, "cancel-reason")
             .send_keys("customer changed their mind") or True)
        click(driver, "the cancel button", By.CSS_SELECTOR, "#cancel-form button")
        wait(driver, "the order cancelled", lambda d: text_of(d, "#order-status") == "cancelled")
        assert "customer changed their mind" in driver.find_element(By.ID, "view").text
        shot(driver, "order")
        print("console: an order cancelled from the page, reason in its timeline")

        # A vendor outage: VendorB down, a sync from the page fails, twice (the retry
        # policy's two attempts), and the vendor shows unhealthy; the failed sync
        # request is a dead letter.
        status, _ = call("POST", f"{VENDOR_B}/simulate/fault", None, {"outage": True})
        assert status == 200, status
        go(driver, "#/vendors")
        click(driver, "VendorB's sync button", By.XPATH, "//button[normalize-space()='Sync VendorB']")
        wait(driver, "VendorB shown unhealthy",
             lambda d: text_of(d, 'tr[data-vendor="VendorB"] .vendor-health') in ("degraded", "down"))
        wait(driver, "the sync reported failed",
             lambda d: "VendorB failed" in d.find_element(By.ID, "status").text)
        shot(driver, "vendors")
        print("console: a vendor outage shows as unhealthy")

        go(driver, "#/dead-letters?queue=stock_sync_queue")
        wait(driver, "the failed sync as a dead letter",
             lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-message]"))
        tabs = read_all(driver, "#view a[href^='#/dead-letters']", lambda link: link.text)
        assert tabs == ["order_queue", "stock_sync_queue", "webhook_queue"], f"queue links: {tabs}"
        shot(driver, "dead-letters")
        call("POST", f"{VENDOR_B}/simulate/reset", None, {})
        time.sleep(1.5)  # the vendor's breaker (open for 1 s here) lets the next call through
        click(driver, "the dead letter's replay button", By.CSS_SELECTOR, "tr[data-message] button")
        wait(driver, "the dead letter replayed",
             lambda d: "Replayed 1 message" in d.find_element(By.ID, "status").text)
        go(driver, "#/vendors")
        wait(driver, "VendorB healthy again after the replayed sync",
             lambda d: text_of(d, 'tr[data-vendor="VendorB"] .vendor-health') == "healthy")
        print("console: a dead letter replayed from the page; the vendor is healthy again")
        click(driver, "the sync-every-vendor button", By.ID, "sync-all")
        wait(driver, "a sync of every vendor seen to complete",
             lambda d: "VendorA synced; VendorB synced" in d.find_element(By.ID, "status").text)
        print("console: a sync of every vendor, seen to complete")

        # Stock: the per-vendor breakdown.
        go(driver, "#/stock")
        wait(driver, "the stock page", lambda d: "Confirmed, not yet reported" in d.find_element(By.ID, "view").text)
        shot(driver, "stock")

        # A client key sees its own orders, and another customer's order is not found.
        bobs = place(BOB, "bob")
        log_in(driver, ALICE)
        go(driver, f"#/order/{bobs}")
        wait(driver, "bob's order refused to alice",
             lambda d: "404" in d.find_element(By.ID, "problem").text)
        go(driver, "#/orders")
        wait(driver, "alice's own orders", lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-order]"))
        listed = read_all(driver, "tr[data-order]", lambda row: row.get_attribute("data-order"))
        assert bobs not in listed, "a client key listed another customer's order"
        print("console: a client key cannot see another customer's order")
        print(f"console{LABEL}: every step passed")
    finally:
        driver.quit()


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        print(f"console{LABEL}: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
