#!/usr/bin/env python3
"""The snapshots page in a real browser: headless Chromium (Debian's chromium and
chromium-driver) driven by Selenium against a running `ferry serve`.

Run by tests/integration/page.rs, which starts the server, makes the tokens and a few
snapshots first. Prints one line per step and `N passed, 0 failed` at the end; any
failure leaves a screenshot and the page's HTML beside the screenshots.

    page_test.py --base http://127.0.0.1:PORT --admin TOKEN --reader TOKEN --shots DIR
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The machine has no network but the loopback: Chromium must not try to reach anything.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
]


class Failed(Exception):
    pass


class Browser:
    def __init__(self, base, shots):
        self.base = base
        self.shots = shots
        self.profile = tempfile.mkdtemp(prefix="ferry-chromium-")
        self.downloads = tempfile.mkdtemp(prefix="ferry-downloads-")
        options = Options()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        options.add_experimental_option(
            "prefs",
            {"download.default_directory": self.downloads, "download.prompt_for_download": False},
        )
        self.d = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        self.d.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": self.downloads})
        self.problems = []
        self.passed = 0

    def close(self):
        try:
            self.d.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
            shutil.rmtree(self.downloads, ignore_errors=True)

    # --- helpers ---------------------------------------------------------------------
    def go(self, path):
        self.d.get(self.base + path)

    def path(self):
        return "/" + self.d.current_url.split("/", 3)[3] if self.d.current_url.count("/") >= 3 else "/"

    def find(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def all(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def wait(self, what, condition, timeout=30):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(lambda d: condition())
        except TimeoutException:
            raise Failed(f"timed out after {timeout}s waiting for {what} (at {self.d.current_url})")

    def text(self, css):
        return self.find(css).text

    def ok(self, step):
        self.passed += 1
        print(f"ok {self.passed}: {step}", flush=True)

    def check_log(self, allowed=()):
        """Console errors and CSP violations since the last check; `allowed` are the
        expected "Failed to load resource" lines of a refusal the test provoked."""
        for entry in self.d.get_log("browser"):
            message = entry["message"]
            csp = "Content Security Policy" in message or "Content-Security-Policy" in message
            if csp or entry["level"] == "SEVERE":
                if not csp and any(a in message for a in allowed):
                    continue
                self.problems.append(message)
        if self.problems:
            raise Failed("the browser logged: " + " | ".join(self.problems))

    def shot(self, name):
        """Full-page screenshots (up to a height) at 1280 and 375 CSS pixels wide."""
        self.d.execute_script("window.scrollTo(0, 0); document.activeElement && document.activeElement.blur()")
        for width, suffix in ((1280, "desktop"), (375, "mobile")):
            metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500}
            self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            time.sleep(0.3)
            height = self.d.execute_script("return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
            metrics["height"] = min(int(height), 2400 if width < 500 else 3200)
            self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            time.sleep(0.3)
            wide = self.d.execute_script("return document.documentElement.scrollWidth")
            if wide > width + 1:
                raise Failed(f"{name} is {wide}px wide at a {width}px viewport: it must not scroll sideways")
            png = self.d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})
            with open(os.path.join(self.shots, f"{name}-{suffix}.png"), "wb") as f:
                f.write(base64.b64decode(png["data"]))
        self.d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def login(self, token):
        self.go("/login")
        field = self.find("#token")
        field.clear()
        field.send_keys(token)
        self.find("form.form button[type=submit]").click()


def run(b, admin, reader):
    # Logged out: the page asks for a token.
    b.go("/")
    b.wait("the login form", lambda: b.path().startswith("/login") and b.all("#token"))
    b.check_log()
    b.ok("logged out, / shows the login form")

    # The log check itself: an inline script is blocked by the page's policy, and the
    # violation reaches the log this test reads.
    b.d.execute_script("const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.head.appendChild(s)")
    time.sleep(0.3)
    if b.d.execute_script("return window.__inline === 1"):
        raise Failed("an inline script ran: the Content-Security-Policy does not hold")
    caught = [e["message"] for e in b.d.get_log("browser") if "Content Security Policy" in e["message"]]
    if not caught:
        raise Failed("a CSP violation did not reach the browser log: the log check would miss one")
    b.ok("an inline script is refused by the CSP, and the violation shows in the log")

    # A reader token is refused, with a page that says why.
    b.login(reader)
    b.wait("the reader refusal", lambda: b.all("#login-error"))
    message = b.text("#login-error")
    if "reader role" not in message or "admin" not in message:
        raise Failed(f"the refusal does not say why: {message!r}")
    b.check_log(allowed=("status of 403",))
    b.ok("a reader token is refused: " + message.split(".")[0])

    # An admin token logs in.
    b.login(admin)
    b.wait("the history", lambda: b.path() == "/" and b.all("h1") and b.text("h1") == "Snapshots")
    if len(b.all("#history tbody tr")) < 2:
        raise Failed("the history should list the snapshots made before the test")
    failed = b.all('tr[data-status="failed"] details.fail')
    if not failed:
        raise Failed("the history should show the failed snapshot made before the test")
    failed[0].find_element(By.CSS_SELECTOR, "summary").click()
    error = failed[0].find_element(By.CSS_SELECTOR, ".error-text")
    b.wait("the error to show", lambda: error.is_displayed() and error.text)
    b.check_log()
    b.ok("an admin token logs in and sees the history; a failed run shows its error on expand")

    # The form: its estimate shows before submitting and follows the choices.
    b.find('.mainnav a[href="/snapshots/new"]').click()
    b.wait("the form", lambda: b.all("#new-snapshot"))
    b.wait("the estimate", lambda: b.find("#estimate").get_attribute("data-state") == "ready", timeout=60)
    rows_all = b.text('[data-est="rows"]')
    if not rows_all or rows_all == "—":
        raise Failed("the estimate shows no rows")
    for key in ("size", "files", "parts", "time", "cost"):
        if b.text(f'[data-est="{key}"]') in ("", "—"):
            raise Failed(f"the estimate shows no {key}")
    b.ok(f"the estimate shows before submitting: {rows_all} rows")
    job = b.find("#job").get_attribute("value")
    options = f'.job-options[data-job="{job}"]'
    b.find(f'{options} input[type=checkbox][value="accounts"]').click()
    b.wait("the estimate to follow", lambda: b.find("#estimate").get_attribute("data-state") == "ready"
           and b.text('[data-est="rows"]') != rows_all, timeout=60)
    rows_fewer = b.text('[data-est="rows"]')
    b.find(f'{options} label:has(> input[type=radio][value="3"])').click()
    b.wait("the estimate to follow the window", lambda: b.find("#estimate").get_attribute("data-state") == "ready"
           and b.text('[data-est="rows"]') != rows_fewer, timeout=60)
    b.ok(f"the estimate follows the choices: {rows_all} → {rows_fewer} → {b.text('[data-est=rows]')} rows")
    b.find("#name").send_keys("Quarter for the auditors")
    b.find("#description").send_keys("members and their last three months of transactions")
    b.check_log()
    b.shot("form")

    # Sent: the history shows it, and its row follows the run without a reload.
    b.find("#request-snapshot").click()
    b.wait("the new row", lambda: b.all("tr.fresh") and b.all("#notice"))
    row = b.find("tr.fresh")
    sid = row.get_attribute("data-id")
    b.d.execute_script(
        """
        const id = arguments[0];
        window.__noReload = true;
        window.__seen = [document.querySelector(`tr[data-id="${id}"]`).dataset.status];
        new MutationObserver(() => {
          const r = document.querySelector(`tr[data-id="${id}"]`);
          const s = r && r.dataset.status;
          if (s && window.__seen[window.__seen.length - 1] !== s) window.__seen.push(s);
        }).observe(document.getElementById("history"), { subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"] });
        """,
        sid,
    )
    progress_seen = []

    def done():
        seen = b.d.execute_script("return window.__seen")
        if seen and seen[-1] == "in_progress" and not progress_seen:
            text = b.d.execute_script(f'const t = document.querySelector(\'tr[data-id="{sid}"] [data-progress-text]\'); return t && t.textContent')
            if text and "records" in text:
                progress_seen.append(text)
        return seen and seen[-1] in ("completed", "failed")

    b.wait("the run to finish", done, timeout=300)
    seen = b.d.execute_script("return window.__seen")
    if seen != ["pending", "in_progress", "completed"]:
        raise Failed(f"the row went {seen}, expected pending → in progress → completed")
    if not b.d.execute_script("return window.__noReload === true"):
        raise Failed("the page reloaded")
    cells = b.find(f'tr[data-id="{sid}"]').text
    if "Completed" not in cells:
        raise Failed(f"the finished row does not say completed: {cells!r}")
    b.check_log()
    b.ok("the row went " + " → ".join(seen) + " without a reload" + (f" (live: {progress_seen[0]})" if progress_seen else ""))
    b.shot("history")

    # Detail: files, sizes, sha256, links, manifest, status history, script.
    b.find(f'tr[data-id="{sid}"] a.name-link').click()
    b.wait("the detail", lambda: b.all("#files") and b.all("[data-manifest]"))
    manifest = json.loads(b.find("[data-manifest]").get_attribute("textContent"))
    history = [e.text.split("\n")[0] for e in b.all("#status-history .badge")]
    if history != ["Pending", "In progress", "Completed"]:
        raise Failed(f"the status history is {history}")
    files = b.all("table.files tbody tr")
    names = [f.get_attribute("data-file") for f in files]
    if "manifest.json" not in names or not any(n.endswith(".tar") for n in names):
        raise Failed(f"the files are {names}")
    script = b.find("#script-curl").get_attribute("textContent")
    for n in names:
        if f"{b.base}/api/v1/snapshots/{sid}/files/{n}" not in script:
            raise Failed(f"the curl script has no URL for {n}")
    b.find('[data-copy="script-curl"]').click()
    b.wait("the copy to be confirmed", lambda: b.text("[data-copied]") != "")
    if "ferry verify" not in b.text("#verify"):
        raise Failed("the page does not say how to check the snapshot")
    b.check_log()
    b.ok(f"the detail lists {len(names)} files with sha256, the manifest, the history and a script of every URL")
    b.shot("detail")

    # A part, downloaded through its link (the session cookie authorizes it).
    part = next(n for n in names if n.endswith(".tar"))
    expected = next(a["sha256"] for a in manifest["archives"] if a["name"] == part)
    b.find(f'tr[data-file="{part}"] a[data-download]').click()
    target = os.path.join(b.downloads, part)
    b.wait(f"{part} to download", lambda: os.path.exists(target) and not os.path.exists(target + ".crdownload"), timeout=60)
    with open(target, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    if got != expected:
        raise Failed(f"{part} downloaded with sha256 {got}, the manifest says {expected}")
    b.check_log()
    b.ok(f"{part} downloaded through its link matches the manifest's sha256")

    # A form posted without its CSRF token is refused (and the session is kept).
    b.d.execute_script('document.querySelector("#logout input[name=csrf]").remove()')
    b.find("#logout button").click()
    b.wait("the refusal", lambda: b.all("[data-message]"))
    if "security token" not in b.text("[data-message]"):
        raise Failed(f"the post without a CSRF token was not refused: {b.text('main')!r}")
    b.check_log(allowed=("status of 403",))
    b.go("/")
    b.wait("the history", lambda: b.path() == "/" and b.all("#history"))
    b.ok("a post without its CSRF token is refused; the session stays")

    # Delete, with a confirmation.
    b.go(f"/snapshots/{sid}")
    b.find('a[href$="/delete"]').click()
    b.wait("the confirmation", lambda: b.all("#confirm-delete"))
    b.find("#confirm-delete").click()
    b.wait("the history after deleting", lambda: b.path().startswith("/?") and b.all("#notice"))
    status = b.find(f'tr[data-id="{sid}"]').get_attribute("data-status")
    if status != "deleted":
        raise Failed(f"the deleted snapshot shows {status}")
    b.check_log()
    b.ok("deleted after a confirmation")

    # Log out: the session ends.
    b.find("#logout button").click()
    b.wait("the login form", lambda: b.path().startswith("/login") and b.all("#token"))
    b.go("/")
    b.wait("the login form again", lambda: b.path().startswith("/login"))
    b.check_log()
    b.ok("logged out; / asks for a token again")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--admin", required=True)
    p.add_argument("--reader", required=True)
    p.add_argument("--shots", required=True)
    a = p.parse_args()
    os.makedirs(a.shots, exist_ok=True)
    b = Browser(a.base.rstrip("/"), a.shots)
    try:
        run(b, a.admin, a.reader)
    except Exception as e:  # noqa: BLE001 - reported with the page it happened on
        try:
            b.d.save_screenshot(os.path.join(a.shots, "failure.png"))
            with open(os.path.join(a.shots, "failure.html"), "w") as f:
                f.write(b.d.page_source)
        except Exception:  # noqa: BLE001
            pass
        print(f"FAILED after {b.passed} steps: {e}", flush=True)
        print(f"{b.passed} passed, 1 failed")
        b.close()
        sys.exit(1)
    b.close()
    print(f"{b.passed} passed, 0 failed")


if __name__ == "__main__":
    main()
