"""Drives /terminal/demo in headless Chromium (Playwright, Debian's /usr/bin/chromium).

Usage: terminal_demo.py BASE_URL USERNAME PASSWORD DOCTOR_ID SCREENSHOT_DIR

Signs in, creates a request for DOCTOR_ID, prints the QR payload read from the page as one
JSON line {"qr_link": ...} (the test then signs with the phone library), waits up to 30 s for
the page to show 已签署 without a reload, checks signer, time and download link, saves
screenshots and prints {"ok": true, ...}. Any failure exits non-zero with the reason.
"""

import json
import os
import sys

from playwright.sync_api import sync_playwright


def main() -> int:
    base, user, password, doctor, shots = sys.argv[1:6]
    os.makedirs(shots, exist_ok=True)
    console = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.goto(base + "/terminal/demo")
        assert "终端演示" in page.title(), page.title()
        page.fill("#username", user)
        page.fill("#password", password)
        page.click("#login-button")
        page.wait_for_selector("#form:not(.hidden)", timeout=10000)
        options = page.eval_on_selector_all("#doctor option", "os => os.map(o => o.value)")
        assert doctor in options, options
        page.select_option("#doctor", doctor)
        page.select_option("#doc-type", "知情同意书")
        page.fill("#patient-id", "P-DEMO-001")
        page.click("#create-button")
        page.wait_for_selector("#result:not(.hidden)", timeout=10000)
        page.wait_for_selector("#qr svg", timeout=10000)
        link = page.inner_text("#qr-link").strip()
        assert link.startswith("yiqian://sign?"), link
        assert page.inner_text("#status").strip() == "待签署"
        # A marker that survives only if the page is never reloaded.
        page.evaluate("window.__noReload = 'still-here'")
        # (wait_for_function would evaluate a string, which the page's CSP forbids.)
        page.wait_for_selector("#ws-state:has-text('live')", timeout=10000)
        page.screenshot(path=os.path.join(shots, "1-qr.png"), full_page=True)
        print(json.dumps({"qr_link": link}), flush=True)

        page.wait_for_selector("#status[data-status='completed']", timeout=30000)
        assert page.inner_text("#status").strip() == "已签署", page.inner_text("#status")
        assert page.evaluate("window.__noReload") == "still-here", "the page was reloaded"
        signer = page.inner_text("#signer")
        signed_at = page.inner_text("#signed-at")
        assert doctor in signer, signer
        assert signed_at.strip() not in ("", "—"), signed_at
        href = page.get_attribute("#download-cms", "href") or ""
        assert href.startswith("blob:"), href
        with page.expect_download() as dl:
            page.click("#download-cms")
        cms_path = os.path.join(shots, "signature.p7s")
        dl.value.save_as(cms_path)
        size = os.path.getsize(cms_path)
        assert size > 500, size
        page.screenshot(path=os.path.join(shots, "2-signed.png"), full_page=True)
        browser.close()
    errors = [c for c in console if c.startswith(("error", "pageerror"))]
    assert not errors, errors
    print(json.dumps({"ok": True, "signer": signer, "signed_at": signed_at, "cms_bytes": size, "cms": cms_path}), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001 - report any failure to the Rust test
        print(json.dumps({"ok": False, "error": repr(e)}), flush=True)
        sys.exit(1)
