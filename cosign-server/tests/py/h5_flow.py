#!/usr/bin/env python3
"""Drives the patient signing page (web-h5) in Debian's headless Chromium with Playwright.

Called by cosign-server/tests/it/h5_page.rs. Two ways to answer the page's API calls:

* --mock: this script answers /api/v1/h5/* itself, exactly as docs/api/patient.md describes
  (the page is still served by the real cosign-server), and checks every body the page sends;
* otherwise the real server answers and the SMS code is read from the test's fake gateway
  (--sms-url returns the last code as JSON {"code": "123456"}).

With --wechat the browser poses as WeChat's built-in browser (Android XWeb user agent) without
Pointer Events (`window.PointerEvent` deleted before the page loads, as on old X5 kernels and iOS
before 13), and every stroke and the long press are real touch events sent through CDP
`Input.dispatchTouchEvent` (Playwright's mouse makes no touch events): the page's touch fallback.

With --id-card (and optionally --id-card-wrong, --selfie, --selfie-wrong) the task asks for
camera checks: the photos are chosen through the page's file inputs (a wrong one first: the
server's Chinese advice must show); the selfie is sent enlarged to a 2048-pixel uncompressed
PNG, which the page must redraw as JPEG before sending. With --camera the browser's camera is
Chromium's fake device playing --camera-image (written as Y4M to --camera): the script follows
the liveness prompts, expects the server's refusal (a still picture performs no action) and
stops there, unsigned.

With --live-poses DIR (the poses `liveness synth live` writes: neutral.png, blink.png,
open_mouth.png, turn_left.png, turn_right.png) the camera is a stand-in person who does what the
page asks, and liveness must pass, after which the patient signs. Chromium's fake camera cannot
do this: it plays one fixed file from launch, knows nothing of the page, and so cannot show the
action being prompted at the moment it is prompted. So an init script (CAMERA_JS) replaces
`navigator.mediaDevices.getUserMedia` with a `canvas.captureStream()` whose canvas it repaints
from the prompt on screen: the neutral face, and while `#live-prompt` shows an action, that
action a moment after the prompt appears (reaction time), held a while, then neutral again.
The page's own capture code (video element -> canvas -> JPEG -> upload) runs unchanged.

Prints one JSON line with what was observed (submission ids, bodies' shapes); exits non-zero
with a message on any failed expectation. Screenshots of every step (390x844) go to --shots.
"""

import argparse
import base64
import json
import os
import shutil
import struct
import sys
import tempfile
import time
import urllib.request
import zlib

from playwright.sync_api import sync_playwright, expect

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-default-apps", "--disable-extensions",
]
# WeChat 8.0 on Android (XWeb kernel), as its built-in browser reports itself.
WECHAT_UA = ("Mozilla/5.0 (Linux; Android 12; V2055A Build/SP1A.210812.003; wv) AppleWebKit/537.36 "
             "(KHTML, like Gecko) Version/4.0 Chrome/86.0.4240.99 XWEB/4435 MMWEBSDK/20221011 "
             "Mobile Safari/537.36 MMWEBID/6170 MicroMessenger/8.0.30.2260(0x28001E3B) "
             "WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64")
# Touch force sent with every touch point; the touch fallback records it as the pressure.
TOUCH_FORCE = 0.8
MOCK_CODE = "246810"
# The stand-in person (--live-poses): a 640x480 camera, reacting this long after a prompt
# appears and holding the action this long. The page takes its first frame of an action 0.9 s
# after the prompt and then one every 0.35 s (8 in all), so about half of each action's frames
# show the action and the rest the neutral face, as a person's would.
CAMERA_W, CAMERA_H = 640, 480
REACT_MS, HOLD_MS = 400, 1600
# Replaces getUserMedia (see the module docs); the poses are fetched from CAMERA_PATH, which
# the script answers from --live-poses (same origin: a canvas fed from another origin would be
# tainted). window.__camera.painted records, per prompt index, the poses painted in order.
CAMERA_PATH = "/__test_camera__/"
CAMERA_JS = """
(() => {
  const [W, H, REACT, HOLD, PATH] = %s;
  const names = ['neutral', 'blink', 'open_mouth', 'turn_left', 'turn_right'];
  const images = {};
  const loaded = Promise.all(names.map(n => new Promise((ok, bad) => {
    const img = new Image();
    img.onload = () => { images[n] = img; ok(); };
    img.onerror = () => bad(new Error('camera pose ' + n + ' did not load'));
    img.src = PATH + n + '.png';
  })));
  const camera = window.__camera = { painted: {}, opened: 0 };
  let acting = null;
  // What the person shows now: the action being prompted, from REACT to REACT + HOLD ms after
  // the prompt appeared; otherwise the neutral face.
  function pose() {
    const p = document.querySelector('#live-prompt');
    if (!p) { acting = null; return 'neutral'; }
    if (!acting || acting.index !== p.dataset.index) {
      acting = { index: p.dataset.index, action: p.dataset.action, since: performance.now() };
    }
    const t = performance.now() - acting.since;
    const name = t >= REACT && t < REACT + HOLD ? acting.action : 'neutral';
    const seen = camera.painted[acting.index] = camera.painted[acting.index] || [];
    if (seen[seen.length - 1] !== name) seen.push(name);
    return name;
  }
  // On the prototype: however the page reaches the method, it gets this one.
  MediaDevices.prototype.getUserMedia = async () => {
    await loaded;
    camera.opened += 1;
    const canvas = document.createElement('canvas');
    canvas.width = W;
    canvas.height = H;
    const ctx = canvas.getContext('2d');
    const paint = () => {
      const img = images[pose()];
      const s = Math.min(W / img.naturalWidth, H / img.naturalHeight);
      const w = img.naturalWidth * s, h = img.naturalHeight * s;
      ctx.fillStyle = '#808080';
      ctx.fillRect(0, 0, W, H);
      ctx.drawImage(img, (W - w) / 2, (H - h) / 2, w, h);
    };
    paint();
    const timer = setInterval(paint, 40);
    const stream = canvas.captureStream(25);
    for (const track of stream.getTracks()) {
      const stop = track.stop.bind(track);
      track.stop = () => { clearInterval(timer); stop(); };
    }
    return stream;
  };
})();
"""
MOCK_SESSION = "mock-session-0123456789abcdef"


def fail(msg):
    print(f"h5_flow: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def page_png(n, width=1000, height=1400):
    """A white page with grey text-like bars and a page-number block (real PNG, no PIL)."""
    rows = []
    for y in range(height):
        row = bytearray(b"\xff" * width)
        if 100 <= y < height - 100 and (y // 18) % 3 == 0:
            row[80:width - 80 - (y * 7 + n * 13) % 200] = b"\x99" * (width - 160 - (y * 7 + n * 13) % 200)
        rows.append(b"\x00" + bytes(row))
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def check_png(b64, what):
    data = base64.b64decode(b64)
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{what}: not a PNG")
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    check(colour == 6 and depth == 8, f"{what}: PNG is not RGBA (colour type {colour}): no transparency")
    check(width > 50 and height > 50, f"{what}: PNG too small {width}x{height}")
    return width, height


def check_strokes(strokes, what):
    check(isinstance(strokes, list) and strokes, f"{what}: no strokes")
    for s in strokes:
        pts = s["points"]
        check(len(pts) >= 2, f"{what}: stroke with {len(pts)} points")
        last_t = -1
        for p in pts:
            check(set(p) == {"x", "y", "t", "p"}, f"{what}: point fields {sorted(p)}")
            check(p["t"] >= last_t, f"{what}: time goes backwards")
            check(0 < p["p"] <= 1, f"{what}: pressure {p['p']}")
            last_t = p["t"]
    return sum(len(s["points"]) for s in strokes)


class Mock:
    """Answers the page's API calls per the contract and records what the page sent."""

    def __init__(self, task):
        self.task = task
        self.sms = 0
        self.verify_codes = []
        self.proxy = None
        self.submits = []       # (submission_id, body) in arrival order, including cut ones
        self.results = {}       # idempotency: submission_id -> result
        self.cut_next_submit = False
        self.page_requests = 0

    def handle(self, route, request):
        url = request.url
        path = url.split("/api/v1/h5/tasks/", 1)[1]
        token, _, rest = path.partition("/")
        check(len(token) >= 16, f"token in URL {token!r}")
        session = request.headers.get("x-yiqian-h5-session")

        def reply(status, body):
            route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

        def error(status, code, zh, en, **extra):
            reply(status, {"code": code, "message": zh, "message_en": en, **extra})

        if request.method == "GET" and rest == "":
            return reply(200, self.task)
        if request.method == "POST" and rest == "sms":
            self.sms += 1
            if self.sms > 1:
                return error(429, "RATE_LIMITED", "请求过于频繁，请稍后再试。", "Too many requests.")
            return reply(200, {"resend_after_s": 60})
        if request.method == "POST" and rest == "verify":
            code = json.loads(request.post_data)["code"]
            self.verify_codes.append(code)
            if code != MOCK_CODE:
                return error(400, "OTP_INVALID", "验证码错误。", "Wrong code.", attempts_left=4)
            return reply(200, {"session": MOCK_SESSION})
        if session != MOCK_SESSION:
            return error(401, "SESSION_REQUIRED", "请先完成短信验证。", "Verify by SMS first.")
        if request.method == "GET" and rest.startswith("pages/"):
            n = int(rest[len("pages/"):-len(".png")])
            check(1 <= n <= self.task["page_count"], f"page {n} requested")
            self.page_requests += 1
            return route.fulfill(status=200, content_type="image/png", body=page_png(n))
        if request.method == "POST" and rest == "proxy":
            self.proxy = json.loads(request.post_data)
            return reply(200, {})
        if request.method == "POST" and rest == "submit":
            body = json.loads(request.post_data)
            self.submits.append((body["submission_id"], body))
            if self.cut_next_submit:
                # The server did the work, but the answer never reaches the page.
                self.cut_next_submit = False
                self.results.setdefault(body["submission_id"], self.signed())
                return route.abort("connectionreset")
            result = self.results.setdefault(body["submission_id"], self.signed())
            return reply(200, result)
        fail(f"unexpected call {request.method} {url}")

    @staticmethod
    def signed():
        return {"status": "signed", "signed_at": "2026-11-28T09:30:00+08:00", "document_id": "doc-1"}


def mock_task(mode, proxy, copy_text):
    task = {
        "title": "手术知情同意书", "hospital": "示例市第一人民医院", "signer_name_masked": "张*",
        "signer_role": "proxy" if proxy else "patient", "sign_mode": mode,
        "require_read_to_end": True, "identity": ["sms"], "status": "pending",
        "page_count": 3, "phone_masked": "138****0000", "verified": False,
        "expires_at": "2026-11-28T10:00:00+08:00",
    }
    if mode == "copy":
        task["copy_text"] = copy_text
    return task


class Flow:
    def __init__(self, args, page, mock):
        self.args, self.page, self.mock = args, page, mock
        self.cdp = page.context.new_cdp_session(page) if args.wechat else None
        self.n = 0
        self.submit_bodies = []
        self.id_summary = None
        self.live = None

    def shot(self, name):
        self.n += 1
        self.page.screenshot(path=f"{self.args.shots}/{self.args.name}-{self.n:02d}-{name}.png", full_page=False)

    def sms_code(self):
        if self.mock:
            return MOCK_CODE
        deadline = time.time() + 20
        while time.time() < deadline:
            with urllib.request.urlopen(self.args.sms_url, timeout=5) as r:
                code = json.loads(r.read()).get("code")
            if code:
                return code
            time.sleep(0.2)
        fail("no SMS code reached the fake gateway")

    def verify(self):
        page = self.page
        expect(page.locator("#send-code")).to_be_visible()
        expect(page.locator(".doc-title")).to_have_text(self.args.title)
        expect(page.locator(".signer")).to_contain_text("*")
        self.shot("sms")
        # Font size control (for the elderly) and the language toggle.
        size = lambda: page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
        before = size()
        page.click("#font-larger")
        check(size() > before, "A+ did not enlarge the text")
        page.click("#font-smaller")
        check(size() == before, "A- did not restore the text size")
        page.click("#lang-toggle")
        expect(page.locator("#send-code")).to_have_text("Send code")
        page.click("#lang-toggle")
        expect(page.locator("#send-code")).to_have_text("获取验证码")
        # Touch targets: every button at least 48 px high.
        for h in page.eval_on_selector_all("button", "bs => bs.map(b => b.getBoundingClientRect().height)"):
            check(h >= 47.5, f"button only {h}px high")
        page.click("#send-code")
        expect(page.locator("#send-code")).to_be_disabled()
        expect(page.locator("#send-code")).to_contain_text("秒后")
        code = self.sms_code()
        # A wrong code first: the server's message is shown, in Chinese.
        wrong = "000000" if code != "000000" else "111111"
        page.fill("#sms-code", wrong)
        page.click("#verify")
        expect(page.locator(".error")).to_be_visible()
        err = page.locator(".error").inner_text()
        check(any("\u4e00" <= ch <= "\u9fff" for ch in err), f"error not in Chinese: {err!r}")
        self.shot("sms-wrong-code")
        page.fill("#sms-code", code)
        self.shot("sms-code")
        page.click("#verify")
        expect(page.locator("#doc")).to_be_visible()

    def identity(self):
        """The camera checks: each photo through its file input, a wrong one first if given."""
        page, a = self.page, self.args
        expect(page.locator(".step-identity")).to_be_visible(timeout=30000)
        self.shot("identity")
        refusals = 0
        face_bodies = []
        page.on("request", lambda r: face_bodies.append(json.loads(r.post_data))
                if r.method == "POST" and r.url.endswith("/identity/face") else None)

        def photo(input_id, wrong, right, name):
            nonlocal refusals
            expect(page.locator(f"#{input_id}")).to_be_attached(timeout=60000)
            if wrong:
                page.set_input_files(f"#{input_id}", wrong)
                err = page.locator(".step-identity .error")
                expect(err).to_be_visible(timeout=60000)
                check(chinese(err.inner_text()), f"{name} refusal not in Chinese: {err.inner_text()!r}")
                self.shot(f"{name}-refused")
                refusals += 1
            page.set_input_files(f"#{input_id}", right)

        photo("id-card-file", a.id_card_wrong, a.id_card, "id-card")
        redrawn = None
        if a.selfie:
            big = os.path.join(tempfile.mkdtemp(), "selfie-2048.png")
            enlarge(a.selfie, big)
            photo("face-file", a.selfie_wrong, big, "face")
            expect(page.locator("#face-file")).to_have_count(0, timeout=60000)
            # Only now: the browser reads a chosen file from disk when the page opens it.
            shutil.rmtree(os.path.dirname(big))
            last = face_bodies[-1]["image"]
            # JPEG in base64 starts /9j/; the file chosen was a PNG (iVBOR).
            redrawn = last.startswith("/9j/")
            check(redrawn, f"the 2048-px selfie was sent as it is ({last[:8]}...)")
        self.id_summary = {"refusals": refusals, "selfie_redrawn": redrawn}

    def liveness(self, passes):
        """Follows the prompts of the challenge until the server's verdict is shown: the
        refusal with "重新检测" or, when `passes`, the stage gone (the page moved on)."""
        page = self.page
        challenges, sent, verdicts = [], [], []
        page.on("response", lambda r: challenges.append(r)
                if r.url.endswith("/identity/liveness/challenge") else None)
        page.on("request", lambda r: sent.append(json.loads(r.post_data))
                if r.method == "POST" and r.url.endswith("/identity/liveness") else None)
        page.on("response", lambda r: verdicts.append(r)
                if r.request.method == "POST" and r.url.endswith("/identity/liveness") else None)
        expect(page.locator("#live-start")).to_be_visible(timeout=60000)
        self.shot("liveness")
        page.click("#live-start")
        prompted = []
        deadline = time.time() + 90
        stage = page.locator(".live-stage")
        err = page.locator(".live-stage .error")
        while time.time() < deadline and err.count() == 0 and stage.count() > 0:
            seen = page.evaluate("(() => { const p = document.querySelector('#live-prompt');"
                                 " return p ? [p.dataset.index, p.dataset.action, p.innerText] : null })()")
            if seen and (not prompted or prompted[-1][0] != seen[0]):
                check(chinese(seen[2]), f"prompt not in Chinese: {seen[2]!r}")
                prompted.append(seen)
                self.shot(f"liveness-{seen[1]}")
            time.sleep(0.1)
        if passes:
            if err.count():
                answer = verdicts[-1].text() if verdicts else "no answer"
                fail(f"liveness refused: {err.inner_text()!r}; the server said {answer}")
            expect(stage).to_have_count(0)
            self.shot("liveness-passed")
            check(verdicts and verdicts[-1].json().get("passed") is True,
                  f"liveness answer {verdicts[-1].text() if verdicts else None}")
        else:
            expect(err).to_be_visible()
            check(chinese(err.inner_text()), f"liveness refusal not in Chinese: {err.inner_text()!r}")
            expect(page.locator("#live-start")).to_have_text("重新检测")
            self.shot("liveness-refused")
        check(len(challenges) == 1 and len(sent) == 1, f"{len(challenges)} challenges, {len(sent)} sends")
        actions = challenges[0].json()["actions"]
        steps = sent[0]["steps"]
        check([s["action"] for s in steps] == actions, "steps not in the challenge's order")
        for s in steps:
            check(all(f.startswith("/9j/") for f in s["frames"]), "a frame is not a JPEG")
        self.live = {"challenge_actions": actions, "prompted": [p[1] for p in prompted],
                     "frames": sum(len(s["frames"]) for s in steps), "passed": passes}
        if self.args.live_poses:
            camera = page.evaluate("window.__camera")
            check(camera["opened"] == 1, f"the stand-in camera was opened {camera['opened']} times")
            # Per step, the poses the stand-in person showed while it was prompted.
            self.live["painted"] = [camera["painted"].get(str(i), []) for i in range(len(actions))]

    def live_summary(self):
        return self.live

    def read(self):
        page = self.page
        expect(page.locator("#doc img")).to_have_count(self.args.pages, timeout=20000)
        page.wait_for_function("[...document.querySelectorAll('#doc img')].every(i => i.complete && i.naturalWidth > 0)")
        self.shot("read-start")
        scrollable = page.eval_on_selector("#doc", "d => d.scrollHeight - d.clientHeight > 40")
        check(scrollable or self.args.pages == 1, "a multi-page document fits the reader without scrolling")
        if scrollable:
            expect(page.locator("#read-next")).to_be_disabled()
            # Scroll half-way: still locked, progress shown.
            page.eval_on_selector("#doc", "d => d.scrollTo(0, (d.scrollHeight - d.clientHeight) / 2)")
            page.wait_for_timeout(200)
            expect(page.locator("#read-next")).to_be_disabled()
            progress = page.locator("#read-progress").inner_text()
            check("%" in progress and "100%" not in progress, f"half-way progress {progress!r}")
            self.shot("read-half")
        page.eval_on_selector("#doc", "d => d.scrollTo(0, d.scrollHeight)")
        expect(page.locator("#read-next")).to_be_enabled()
        expect(page.locator("#read-progress")).to_contain_text("100%")
        self.shot("read-end")
        page.click("#read-next")

    def proxy(self):
        page = self.page
        expect(page.locator("#proxy-id")).to_be_visible()
        self.shot("proxy")
        page.select_option("#proxy-relationship", "child")
        page.fill("#proxy-name", "张小明")
        page.fill("#proxy-reason", "患者术后昏迷，无法签字")
        # One digit changed: the check digit no longer matches, refused before sending.
        page.fill("#proxy-id", "110105194912310021")
        page.click("#proxy-next")
        expect(page.locator(".error").first).to_contain_text("校验")
        if self.mock:
            check(self.mock.proxy is None, "invalid ID number was sent to the server")
        self.shot("proxy-bad-id")
        page.fill("#proxy-id", "11010519491231002X")
        page.click("#proxy-next")
        expect(page.locator("#consent")).to_be_visible()
        if self.mock:
            check(self.mock.proxy == {"relationship": "child", "name": "张小明",
                                      "id_number": "11010519491231002X",
                                      "reason": "患者术后昏迷，无法签字"}, f"proxy body {self.mock.proxy}")

    def touch(self, kind, x=None, y=None):
        """One CDP touch event (touchStart/touchMove with a point, touchEnd without)."""
        points = [] if x is None else [{"x": x, "y": y, "force": TOUCH_FORCE, "id": 0,
                                        "radiusX": 4, "radiusY": 4}]
        self.cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    def touch_draw(self, box, shape):
        for stroke in shape:
            at = lambda x, y: (box["x"] + x * box["width"], box["y"] + y * box["height"])
            self.touch("touchStart", *at(*stroke[0]))
            for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
                for i in range(1, 7):
                    self.page.wait_for_timeout(5)   # time passes between samples
                    self.touch("touchMove", *at(x0 + (x1 - x0) * i / 6, y0 + (y1 - y0) * i / 6))
            self.touch("touchEnd")

    def draw(self, selector, shape):
        box = self.page.locator(selector).bounding_box()
        check(box and box["width"] > 100, f"{selector} has no size")
        if self.cdp:
            return self.touch_draw(box, shape)
        m = self.page.mouse
        for stroke in shape:
            x, y = stroke[0]
            m.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
            m.down()
            for x, y in stroke[1:]:
                m.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=6)
            m.up()

    def sign(self):
        page, mode = self.page, self.args.mode
        expect(page.locator("#consent")).to_be_visible()
        self.shot("sign")
        if mode == "button":
            page.click("#confirm-sign")
            expect(page.locator(".error")).to_contain_text("勾选")
            page.check("#consent")
            self.arm_cut()
            page.click("#confirm-sign")
        elif mode == "long_press":
            page.check("#consent")
            hold = page.locator("#hold")
            hold.hover()
            box = hold.bounding_box()
            centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            down = (lambda: self.touch("touchStart", *centre)) if self.cdp else page.mouse.down
            up = (lambda: self.touch("touchEnd")) if self.cdp else page.mouse.up
            # Released after 1 s: cancelled, nothing sent.
            down()
            page.wait_for_timeout(1000)
            width = page.eval_on_selector("#hold-bar", "b => parseFloat(b.style.width)")
            check(15 <= width <= 60, f"progress after 1 s is {width}%")
            self.shot("long-press-holding")
            up()
            expect(page.locator("#hold-cancelled")).to_be_visible()
            self.shot("long-press-cancelled")
            check(not self.sent_submits(), "an early release submitted")
            self.arm_cut()
            down()
            page.wait_for_timeout(3400)
            up()
        elif mode == "handwriting":
            page.check("#consent")
            self.draw(".sign-pad canvas", [
                [(0.1, 0.6), (0.2, 0.3), (0.3, 0.7), (0.4, 0.35), (0.5, 0.6)],
                [(0.55, 0.3), (0.6, 0.7), (0.75, 0.4), (0.9, 0.55)],
                [(0.2, 0.8), (0.8, 0.8)],
            ])
            page.click("#pad-undo")   # the last stroke goes
            self.draw(".sign-pad canvas", [[(0.2, 0.82), (0.5, 0.78), (0.85, 0.84)]])
            self.shot("handwriting")
            self.arm_cut()
            page.click("#submit")
        elif mode == "copy":
            page.check("#consent")
            chars = [c for c in self.args.copy_text if not c.isspace()]
            expect(page.locator(".copy-box")).to_have_count(len(chars))
            for i, ch in enumerate(chars):
                expect(page.locator("#copy-current")).to_have_text(ch)
                self.draw(".copy-pad canvas", [[(0.2, 0.3), (0.8, 0.3)], [(0.5, 0.1), (0.5, 0.9)],
                                               [(0.25, 0.6), (0.5 + 0.02 * i, 0.75), (0.8, 0.6)]])
                if i == 1:
                    self.shot("copy-writing")
                if i + 1 < len(chars):
                    page.click("#copy-next")
            self.shot("copy-all")
            self.arm_cut()
            page.click("#submit")
        if self.args.cut_submit:
            expect(page.locator("#retry")).to_be_visible(timeout=30000)
            expect(page.locator("#submit-error")).to_contain_text("网络")
            self.shot("network-cut")
            if self.args.reload_after_cut:
                # The phone reloads (or the patient reopens the link): the kept submission is
                # offered again and sent with the same id and strokes.
                page.reload()
                expect(page.locator("#retry")).to_be_visible(timeout=20000)
                self.shot("resume")
            # The page keeps the signature: the pad is locked and Retry re-sends it.
            page.click("#retry")
        expect(page.locator("#done")).to_be_visible(timeout=60000)
        self.shot("done")

    def arm_cut(self):
        if not self.args.cut_submit:
            return
        if self.mock:
            self.mock.cut_next_submit = True
        else:
            state = {"armed": True}

            def cut(route, request):
                if state["armed"]:
                    state["armed"] = False
                    # Let the server do the work, then lose its answer.
                    route.fetch()
                    return route.abort("connectionreset")
                route.continue_()

            self.page.route("**/api/v1/h5/tasks/*/submit", cut)

    def sent_submits(self):
        return [b for b in self.submit_bodies]


def chinese(text):
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def enlarge(src, out, side=2048):
    """The photo at side x side pixels as an uncompressed PNG (far above the page's 2 MB limit
    for sending a photo unchanged)."""
    from PIL import Image
    Image.open(src).convert("RGB").resize((side, side)).save(out, compress_level=0)
    check(os.path.getsize(out) > 2 * 1024 * 1024, "enlarged selfie under 2 MB")


def make_y4m(src, out, frames=10):
    """A still picture as a Y4M video (4:2:0) for Chromium's fake camera."""
    from PIL import Image
    img = Image.open(src).convert("RGB")
    w, h = img.size[0] // 2 * 2, img.size[1] // 2 * 2
    y, cb, cr = img.crop((0, 0, w, h)).convert("YCbCr").split()
    frame = y.tobytes() + cb.resize((w // 2, h // 2)).tobytes() + cr.resize((w // 2, h // 2)).tobytes()
    with open(out, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + frame)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--link", required=True)
    ap.add_argument("--mode", required=True, choices=["button", "long_press", "handwriting", "copy"])
    ap.add_argument("--proxy", action="store_true")
    ap.add_argument("--mock", action="store_true")
    ap.add_argument("--wechat", action="store_true")
    ap.add_argument("--cut-submit", action="store_true")
    ap.add_argument("--reload-after-cut", action="store_true")
    ap.add_argument("--sms-url")
    ap.add_argument("--title", default="手术知情同意书")
    ap.add_argument("--pages", type=int, default=3)
    ap.add_argument("--copy-text", default="本人同意手术")
    ap.add_argument("--shots", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--id-card")
    ap.add_argument("--id-card-wrong")
    ap.add_argument("--selfie")
    ap.add_argument("--selfie-wrong")
    ap.add_argument("--camera", help="Y4M file to write and play as the camera")
    ap.add_argument("--camera-image")
    ap.add_argument("--live-poses", help="directory of `liveness synth live` poses: the camera "
                    "is a stand-in person following the prompts, and liveness must pass")
    args = ap.parse_args()
    check(not (args.camera and args.live_poses), "--camera and --live-poses are two cameras")

    launch_args = list(CHROMIUM_ARGS)
    if args.camera:
        make_y4m(args.camera_image, args.camera)
        launch_args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                        f"--use-file-for-fake-video-capture={args.camera}"]
    mock = Mock(mock_task(args.mode, args.proxy, args.copy_text)) if args.mock else None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=launch_args)
        extra = {"user_agent": WECHAT_UA} if args.wechat else {}
        if args.camera:
            extra["permissions"] = ["camera"]
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                      is_mobile=True, has_touch=True, locale="zh-CN", **extra)
        context.set_default_timeout(15000)
        if args.wechat:
            # Before any page script: the page must see no Pointer Events at all.
            context.add_init_script("delete window.PointerEvent;")
        if args.live_poses:
            context.add_init_script(CAMERA_JS % json.dumps([CAMERA_W, CAMERA_H, REACT_MS, HOLD_MS,
                                                            CAMERA_PATH]))
            context.route(f"**{CAMERA_PATH}*", lambda route, request: route.fulfill(
                path=os.path.join(args.live_poses, request.url.rsplit("/", 1)[1]),
                content_type="image/png"))
        page = context.new_page()
        console = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        flow = Flow(args, page, mock)
        page.on("request", lambda r: flow.submit_bodies.append(json.loads(r.post_data))
                if r.method == "POST" and r.url.endswith("/submit") else None)
        if mock:
            page.route("**/api/v1/h5/tasks/**", mock.handle)
        try:
            page.goto(args.link)
            if args.wechat:
                seen = page.evaluate("[typeof window.PointerEvent, 'PointerEvent' in window, navigator.userAgent]")
                check(seen[0] == "undefined" and not seen[1], f"PointerEvent still present: {seen}")
                check("MicroMessenger" in seen[2], f"user agent {seen[2]!r}")
            flow.verify()
            flow.read()
            if args.proxy:
                flow.proxy()
            if args.id_card:
                flow.identity()
            if args.camera or args.live_poses:
                flow.liveness(passes=bool(args.live_poses))
            if not args.camera:
                flow.sign()
        except Exception as e:  # noqa: BLE001 - report with the page's own console
            try:
                flow.shot("failure")
            except Exception:  # noqa: BLE001
                pass
            fail(f"{type(e).__name__}: {e}\nconsole:\n" + "\n".join(console[-30:]))
        if args.camera:
            # Liveness refused: nothing was submitted.
            check(not flow.submit_bodies, "submitted after a refused liveness check")
            summary = {"liveness": flow.live_summary(), "identity": flow.id_summary}
            browser.close()
            print(json.dumps(summary))
            return
        leftover = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('yiqian.h5.pending'))")
        if not mock:
            # The link is single use: opening it again shows a clear Chinese message.
            page.goto("about:blank")
            page.goto(args.link)
            notice = page.locator(".notice")
            expect(notice).to_be_visible()
            text = notice.inner_text()
            check(any("\u4e00" <= ch <= "\u9fff" for ch in text), f"reused link message {text!r}")
            flow.shot("reused-link")
        browser.close()

    bodies = flow.submit_bodies
    check(bodies, "no submit was sent")
    ids = [b["submission_id"] for b in bodies]
    check(len(set(ids)) == 1, f"retries changed the submission id: {ids}")
    check(len(bodies) == (2 if args.cut_submit else 1), f"{len(bodies)} submits sent")
    check(all(b == bodies[0] for b in bodies), "a retry sent a different body")
    check(not leftover, f"acknowledged submission still pending in localStorage: {leftover}")
    body = bodies[0]
    check(body["consent"] is True and body["read_to_end"] is True, "consent / read_to_end not true")
    summary = {"submission_id": ids[0], "submits": len(bodies), "mode": args.mode}
    if args.id_card:
        summary["identity"] = flow.id_summary
    if args.live_poses:
        summary["liveness"] = flow.live_summary()
    if args.wechat:
        # Every point came through the touch fallback: the touch's force is its pressure.
        strokes = body.get("strokes") or [s for c in body.get("copy_chars") or [] for s in c["strokes"]]
        pressures = {p["p"] for s in strokes for p in s["points"]}
        check(not strokes or pressures == {TOUCH_FORCE}, f"pressures {pressures}: not from touch events")
        summary["touch"] = True
    if args.mode == "long_press":
        check(3000 <= body["held_ms"] < 4500, f"held_ms {body.get('held_ms')}")
        summary["held_ms"] = body["held_ms"]
    if args.mode == "handwriting":
        summary["points"] = check_strokes(body["strokes"], "signature")
        check(len(body["strokes"]) == 3, f"{len(body['strokes'])} strokes after undo (want 3)")
        summary["png"] = check_png(body["signature_png_base64"], "signature")
    if args.mode == "copy":
        chars = [c for c in args.copy_text if not c.isspace()]
        got = [c["char"] for c in body["copy_chars"]]
        check(got == chars, f"copied chars {got} != {chars}")
        last_t = -1
        for c in body["copy_chars"]:
            check_strokes(c["strokes"], f"char {c['char']}")
            check_png(c["png_base64"], f"char {c['char']}")
            # One time line for the whole signature, not one per box.
            check(c["strokes"][0]["points"][0]["t"] >= last_t, f"char {c['char']}: time goes backwards")
            last_t = c["strokes"][-1]["points"][-1]["t"]
        summary["chars"] = len(got)
    if mock:
        check(mock.verify_codes == ["000000", MOCK_CODE], f"codes sent {mock.verify_codes}")
        check(mock.page_requests >= args.pages, "page images not requested with the session")
        check(len(mock.results) == 1, "mock signed more than once")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
