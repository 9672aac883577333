"""Drives the servio dashboard in headless Chromium (Selenium + Debian's chromium-driver).

Run by tests/dashboard.rs against a real stack (menu, inventory, order behind the gateway);
exits non-zero with the reason on the first check that fails. Environment:
DASHBOARD_URL (from `servio dashboard`, token in the fragment), GATEWAY_URL, SCREENSHOT
(optional: where to save a 1280x800 screenshot, e.g. docs/dashboard.png).
"""

import json
import os
import signal
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

URL = os.environ["DASHBOARD_URL"]
GATEWAY = os.environ["GATEWAY_URL"]
SCREENSHOT = os.environ.get("SCREENSHOT")
SERVICES = ["menu-service", "inventory-service", "order-service"]
# Generous: the suite runs on a loaded 2-core machine.
PATIENCE = 60.0


def wait_for(what, check, limit=PATIENCE):
    """Polls `check` until it returns something truthy; fails naming `what` after `limit` s."""
    deadline = time.monotonic() + limit
    last_error = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as error:  # a row re-rendered between two reads: try again
            last_error = error
        if time.monotonic() > deadline:
            sys.exit(f"FAILED: {what} (not within {limit:.0f} s; last error: {last_error})")
        time.sleep(0.05)


def rows(driver, service):
    """(instance id, health, pid) of each row of `service` as the page shows it."""
    section = driver.find_element(By.CSS_SELECTOR, f'section[data-service="{service}"]')
    return [
        (
            row.get_attribute("data-instance"),
            row.find_element(By.CSS_SELECTOR, "td.health").text,
            row.find_element(By.CSS_SELECTOR, "td.pid").text,
        )
        for row in section.find_elements(By.CSS_SELECTOR, "tbody tr")
    ]


def healthy_pid(driver, service):
    found = [r for r in rows(driver, service) if r[1] == "healthy" and r[2].isdigit()]
    return int(found[0][2]) if len(found) == 1 else None


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        GATEWAY + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, json.loads(answer.read() or b"null")


def log_lines(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#log-lines li')]"
        ".map(li => [li.dataset.instance, li.textContent])"
    )


def main(driver):
    driver.get(URL)
    assert "token" not in driver.current_url, f"the token stays in the address bar: {driver.current_url}"

    # 1. The three services show healthy, in words (not only colour).
    for service in SERVICES:
        wait_for(f"{service} shown healthy", lambda s=service: healthy_pid(driver, s))
    print("ok: the three services show healthy")

    # The dependency graph is drawn: a box per service with its state, and order-service
    # (which needs menu and inventory) in a column of its own with two lines into it.
    def drawn():
        boxes = driver.execute_script(
            "return [...document.querySelectorAll('#graph-drawing g.box')]"
            ".map(g => [g.dataset.service, g.querySelector('text.state').textContent])"
        )
        edges = driver.execute_script(
            "return document.querySelectorAll('#graph-drawing line.edge').length"
        )
        want = sorted([[s, "healthy"] for s in ("inventory-service", "menu-service", "order-service")])
        return sorted(boxes) == want and edges == 2
    wait_for("the dependency graph drawn with every service healthy", drawn)
    print("ok: the dependency graph is drawn")

    # 2. SIGKILL of an instance shows within 2 s, then its restart.
    killed = healthy_pid(driver, "order-service")
    os.kill(killed, signal.SIGKILL)
    began = time.monotonic()

    def shown_killed():
        row = driver.find_element(By.CSS_SELECTOR, 'section[data-service="order-service"] tbody tr')
        return "SIGKILL" in row.find_element(By.CSS_SELECTOR, "td.exit").text and int(
            row.find_element(By.CSS_SELECTOR, "td.restarts").text
        ) >= 1

    wait_for("the SIGKILL and restart count shown", shown_killed, limit=2.0)
    print(f"ok: the SIGKILL showed after {time.monotonic() - began:.2f} s")
    wait_for(
        "order-service healthy again with a new pid",
        lambda: (healthy_pid(driver, "order-service") or killed) != killed,
    )
    print("ok: order-service restarted")

    # 3. The restart button of menu-service: a new pid, and the page shows it.
    before = healthy_pid(driver, "menu-service")
    old_ids = {r[0] for r in rows(driver, "menu-service")}
    button = driver.find_element(
        By.CSS_SELECTOR, 'button[data-action="restart"][data-service="menu-service"]'
    )
    wait_for("the restart button enabled", button.is_enabled)
    button.click()
    wait_for("feedback while it runs", lambda: "menu-service" in driver.find_element(By.ID, "feedback").text)
    after = wait_for(
        "menu-service shown with a new pid",
        lambda: (healthy_pid(driver, "menu-service") or before) != before and healthy_pid(driver, "menu-service"),
    )
    wait_for("the restart reported done", lambda: "done" in driver.find_element(By.ID, "feedback").text)
    print(f"ok: the restart button changed menu-service's pid {before} -> {after}")

    # 4. The log pane shows the line the new instance just printed.
    new_ids = {r[0] for r in rows(driver, "menu-service")} - old_ids
    assert len(new_ids) == 1, f"one new menu-service instance, got {new_ids}"
    new_id = new_ids.pop()
    wait_for(
        f"the log pane showing {new_id}'s start-up line",
        lambda: any(i == new_id and "serving" in text for i, text in log_lines(driver)),
    )
    box = driver.find_element(By.ID, "log-filter")
    box.send_keys(new_id)
    wait_for(
        "the text filter keeping only that instance's lines",
        lambda: log_lines(driver) and all(i == new_id for i, _ in log_lines(driver)),
    )
    driver.execute_script(
        "const box = document.getElementById('log-filter');"
        "box.value = ''; box.dispatchEvent(new Event('input'));"
    )
    print(f"ok: the log pane shows {new_id}'s line")

    # 5. Orders through the gateway move the order route's request-rate chart.
    chart = 'figure[data-route="/api/orders"]'
    wait_for("the order route's chart", lambda: driver.find_elements(By.CSS_SELECTOR, chart))
    peak = lambda: float(driver.find_element(By.CSS_SELECTOR, chart).get_attribute("data-peak-rate"))
    assert peak() == 0, f"no order was placed yet, but the chart peaks at {peak()}"
    status, item = call("POST", "/api/menu-items", {"venueId": "v1", "name": "Soup", "priceCents": 450})
    assert status == 201, item
    status, _ = call("PUT", f"/api/inventory/{item['id']}", {"quantity": 1000})
    assert status == 200
    placed = 0
    deadline = time.monotonic() + PATIENCE
    while peak() == 0 and time.monotonic() < deadline:
        status, order = call(
            "POST", "/api/orders", {"venueId": "v1", "items": [{"menuItemId": item["id"], "quantity": 1}]}
        )
        assert status == 201, order
        placed += 1
        time.sleep(0.05)
    assert peak() > 0, f"{placed} orders placed, the chart did not move"
    line = driver.find_element(By.CSS_SELECTOR, f"{chart} svg polyline.a").get_attribute("points")
    assert line.strip(), "the rate line has no points"
    print(f"ok: {placed} orders moved the order route's chart (peak {peak():.2f}/s)")

    # 6. Readable on a narrow window: nothing wider than the window.
    driver.set_window_size(420, 800)
    wait_for(
        "no horizontal scrolling at 420 px",
        lambda: driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"),
        limit=5,
    )
    driver.set_window_size(1280, 800)
    print("ok: fits a narrow window")

    if SCREENSHOT:
        # A few more orders so the chart has a shape, then the picture at 1280x800.
        for _ in range(40):
            call("POST", "/api/orders", {"venueId": "v1", "items": [{"menuItemId": item["id"], "quantity": 1}]})
            time.sleep(0.05)
        time.sleep(1.5)
        driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
        driver.save_screenshot(SCREENSHOT)
        print(f"ok: screenshot in {SCREENSHOT}")


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


if __name__ == "__main__":
    driver = browser()
    try:
        main(driver)
    finally:
        driver.quit()
