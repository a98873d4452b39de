#!/usr/bin/env python3
"""Drives the bedside pad's kiosk page (web-h5 at /h5/#/pad) in Debian's headless Chromium.

Called by cosign-server/tests/it/pad_page.rs against the real server, which plays its part
meanwhile: once the pad is enrolled it assigns a task to it (identity "pad": no SMS), and once
the page is back in the queue after signing (--back-file appears) it revokes the pad. This script:

1. enrols: a wrong code is refused with the server's Chinese message, then --code works; the page
   shows the pad's name and ward and keeps its device key, serial and channel key;
2. waits for the task card in the queue (the page polls through the channel), taps it, reads,
   signs by handwriting (the same flow and checks as h5_flow.py) and sees "done";
3. goes back to the queue: nothing of the task is left in localStorage (then --back-file);
4. 扫码一名一签: the server assigns a second task whose signer proves who they are by SMS; the
   pad's "scan to sign on a phone" button shows the task's QR code, which is decoded from a
   screenshot (zxing-cpp) and opened in a second, phone-sized browser context, where the signer
   verifies the SMS code and signs; the pad sees the task leave its queue and goes back
   (then --done-file);
5. waits for the revoked screen, and "enrol again" returns to enrolment with the key forgotten.

With --clock-skew-ms the pad's clock (Date, Date.now) runs that far behind the real one: the
server refuses the first envelope (PAD_CLOCK, with its own time), and the page must correct its
clock and resend; exactly one such refusal is allowed in the whole run.

Throughout, every API call the page makes after enrolment is an opaque envelope to
/api/v1/pad/call (application/octet-stream, no plaintext route or body inside), never a direct
/api/v1/h5/ call. Screenshots (1024x768, tablet) go to --shots. Prints one JSON summary line.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h5_flow import CHROMIUM_ARGS, Flow, check, fail  # noqa: E402

from playwright.sync_api import sync_playwright, expect  # noqa: E402


# Replaces Date so that the page's clock runs the given milliseconds behind (the real clock
# stays readable through performance.timeOrigin, which main() uses to check the skew took).
SKEWED_CLOCK = """
(() => {
  const skew = %d, Real = Date, realNow = Real.now.bind(Real);
  class PadDate extends Real {
    constructor(...a) { if (a.length === 0) { super(realNow() - skew); } else { super(...a); } }
    static now() { return realNow() - skew; }
  }
  globalThis.Date = PadDate;
})();
"""


def decode_qr(png):
    """The text of the one QR code in a PNG screenshot."""
    import io
    import zxingcpp
    from PIL import Image
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    check(len(found) == 1, f"{len(found)} QR codes in the screenshot")
    return found[0].text


def error_code(response):
    try:
        return response.json().get("code")
    except Exception:  # noqa: BLE001 - not a JSON refusal
        return None


def chinese(text):
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--link", required=True)
    ap.add_argument("--code", required=True)
    ap.add_argument("--pad-name", required=True)
    ap.add_argument("--ward", required=True)
    ap.add_argument("--title", default="手术知情同意书")
    ap.add_argument("--back-file", required=True, help="created once the page is back in the queue")
    ap.add_argument("--done-file", required=True, help="created once the phone signed the second task")
    ap.add_argument("--sms-url", required=True, help="the fake gateway's last code (h5_flow.py)")
    ap.add_argument("--shots", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--clock-skew-ms", type=int, default=0, help="the pad's clock is this far behind")
    args = ap.parse_args()
    # What Flow (h5_flow.py) needs for reading one page and signing by handwriting.
    flow_args = argparse.Namespace(shots=args.shots, name=args.name, pages=1, mode="handwriting",
                                   cut_submit=False, reload_after_cut=False, wechat=False,
                                   title=args.title)
    calls = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1024, "height": 768}, device_scale_factor=1,
                                      has_touch=True, locale="zh-CN")
        context.set_default_timeout(15000)
        if args.clock_skew_ms:
            context.add_init_script(SKEWED_CLOCK % args.clock_skew_ms)
        page = context.new_page()
        console = []
        refusals = []
        page.on("response", lambda r: refusals.append(r)
                if r.url.endswith("/api/v1/pad/call") and r.status != 200 else None)
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.on("request", lambda r: calls.append((r.method, r.url, r.headers.get("content-type"), r.post_data_buffer))
                if "/api/" in r.url else None)
        flow = Flow(flow_args, page, None)
        storage = lambda: page.evaluate("Object.assign({}, localStorage)")
        try:
            page.goto(args.link)
            behind = page.evaluate("performance.timeOrigin + performance.now() - Date.now()")
            check(abs(behind - args.clock_skew_ms) < 5000, f"pad clock {behind} ms behind, not {args.clock_skew_ms}")
            # 1. Enrolment.
            expect(page.locator("#enrol-code")).to_be_visible()
            expect(page.locator(".brand")).to_contain_text("床旁")
            flow.shot("enrol")
            for h in page.eval_on_selector_all("button", "bs => bs.map(b => b.getBoundingClientRect().height)"):
                check(h >= 47.5, f"button only {h}px high")
            page.fill("#enrol-code", "ZZZZ-ZZZZ-ZZZZ")
            page.click("#enrol")
            expect(page.locator(".error")).to_be_visible(timeout=30000)
            err = page.locator(".error").inner_text()
            check(chinese(err), f"enrolment refusal not in Chinese: {err!r}")
            check("yiqian.pad.device" not in storage(), "a refused enrolment kept a device")
            flow.shot("enrol-wrong-code")
            page.fill("#enrol-code", args.code.lower())   # case and dashes do not matter
            page.click("#enrol")
            expect(page.locator("#pad-identity")).to_contain_text(args.pad_name, timeout=30000)
            expect(page.locator("#pad-identity")).to_contain_text(args.ward)
            device = json.loads(storage()["yiqian.pad.device"])
            check(len(device["secret_hex"]) == 64 and len(device["channel_public_hex"]) == 130,
                  f"stored device {sorted(device)}")
            check(device["serial"] and all(c in "0123456789abcdef" for c in device["serial"]),
                  f"serial {device['serial']!r}")
            enrol_calls = len(calls)
            # 2. The queue: the server assigns a task once it sees the pad enrolled.
            card = page.locator(".queue-card")
            if card.count() == 0:
                expect(page.locator("#queue-empty")).to_be_visible(timeout=30000)
                flow.shot("queue-empty")
            expect(card).to_have_count(1, timeout=60000)
            expect(card).to_contain_text(args.title)
            expect(card).to_contain_text("*")
            box = card.bounding_box()
            check(box["height"] >= 96, f"task card only {box['height']}px high")
            flow.shot("queue")
            card.click()
            expect(page.locator(".doc-title")).to_have_text(args.title, timeout=30000)
            check(page.locator("#send-code").count() == 0, "identity 'pad' still asked for SMS")
            flow.read()
            flow.sign()
            # 3. Back to the queue; nothing of the task stays on the shared pad.
            page.click("#pad-back")
            expect(page.locator("#queue-empty")).to_be_visible(timeout=30000)
            left = [k for k in storage() if k.startswith("yiqian.h5.session") or k.startswith("yiqian.h5.pending")]
            check(not left, f"task data left on the pad: {left}")
            check(page.locator(".sign-pad").count() == 0, "the signature pad is still on screen")
            flow.shot("queue-after")
            open(args.back_file, "w").close()
            # 4. 扫码一名一签: the second task goes to the signer's own phone.
            expect(card).to_have_count(1, timeout=60000)
            expect(page.locator(".queue-signer")).to_contain_text("李*")
            page.click(".queue-handoff")
            qr = page.locator("#handoff-qr svg")
            expect(qr).to_be_visible(timeout=30000)
            expect(page.locator(".handoff-signer")).to_contain_text("李*")
            flow.shot("handoff-qr")
            link = decode_qr(qr.screenshot())
            origin = args.link.split("/h5/")[0]
            token = link.split("/h5/#/t/")[1]
            check(len(token) == 43, f"QR link {link!r}")
            phone_ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                            is_mobile=True, has_touch=True, locale="zh-CN")
            phone_ctx.set_default_timeout(15000)
            phone = phone_ctx.new_page()
            phone.on("console", lambda m: console.append(f"phone {m.type}: {m.text}"))
            phone_args = argparse.Namespace(shots=args.shots, name=args.name + "-phone", pages=1, mode="button",
                                            cut_submit=False, reload_after_cut=False, wechat=False,
                                            title=args.title, sms_url=args.sms_url)
            phone_flow = Flow(phone_args, phone, None)
            phone.goto(f"{origin}/h5/#/t/{token}")
            phone_flow.verify()
            phone_flow.read()
            phone_flow.sign()
            phone_ctx.close()
            # The pad notices on its own (the task left its queue) and drops the code.
            expect(page.locator("#handoff-gone")).to_be_visible(timeout=30000)
            check(page.locator("#handoff-qr").count() == 0, "the used QR code is still shown")
            flow.shot("handoff-gone")
            page.click("#pad-back")
            expect(page.locator("#queue-empty")).to_be_visible(timeout=30000)
            # Only now may the test revoke the pad (else the queue could already show it revoked).
            open(args.done_file, "w").close()
            # 5. The administrator revokes the pad: the next poll shows the revoked screen.
            expect(page.locator("#pad-revoked")).to_be_visible(timeout=60000)
            check(chinese(page.locator("#pad-revoked").inner_text()), "revoked screen not in Chinese")
            flow.shot("revoked")
            page.click("#reenrol")
            expect(page.locator("#enrol-code")).to_be_visible()
            check("yiqian.pad.device" not in storage(), "the revoked device key is still stored")
            flow.shot("re-enrol")
        except Exception as e:  # noqa: BLE001 - report with the page's own console
            try:
                flow.shot("failure")
            except Exception:  # noqa: BLE001
                pass
            fail(f"{type(e).__name__}: {e}\nconsole:\n" + "\n".join(console[-30:]))
        clock_refusals = [r for r in refusals if error_code(r) == "PAD_CLOCK"]
        browser.close()

    # The channel: after enrolment, only sealed envelopes; nothing readable on the wire.
    direct = [c for c in calls if "/api/v1/h5/" in c[1]]
    check(not direct, f"direct patient API calls from the pad: {[c[1] for c in direct]}")
    sealed = [c for c in calls[enrol_calls:] if c[1].endswith("/api/v1/pad/call")]
    check(len(sealed) == len(calls) - enrol_calls, f"other calls: {[c[1] for c in calls[enrol_calls:]]}")
    for method, _, ctype, body in sealed:
        check(method == "POST" and ctype == "application/octet-stream", f"{method} {ctype}")
        check(body[:5] == b"YQP1\x01", "not a request envelope")
        for plain in (b"/api/v1/h5", b"/pad/queue", b"/handoff", b"strokes", b"session", args.title.encode()):
            check(plain not in body, f"{plain!r} readable in an envelope")
    # A skewed pad is refused once, then corrects its clock; a right one never is.
    expected = 1 if args.clock_skew_ms > 5 * 60 * 1000 else 0
    check(len(clock_refusals) == expected, f"{len(clock_refusals)} clock refusals, expected {expected}")
    enrols = [c for c in calls if c[1].endswith("/api/v1/pad/enrol")]
    check(len(enrols) == 2, f"{len(enrols)} enrolment calls")
    print(json.dumps({"sealed_calls": len(sealed), "serial": device["serial"]}))


if __name__ == "__main__":
    main()
