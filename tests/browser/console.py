#!/usr/bin/python3
"""Browser tests of the Moat console, run by tests/browser/run.sh.

Headless Chromium (Debian's chromium and chromium-driver) driven by Debian's
python3-selenium, against the real moat-server, lab and moatd agent that
run.sh started. Prints `ok NAME` or `FAIL NAME: why` per check and a closing
`N passed, N failed`. Every wait is bounded; every browser is quit and its
profile folder removed, also on failure.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import (ElementClickInterceptedException, ElementNotInteractableException,
                                        NoSuchElementException, StaleElementReferenceException,
                                        WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

E = os.environ
URL = E["MOAT_URL"]
ADMIN = E["MOAT_ADMIN"]
VIEWER = E["MOAT_VIEWER"]
CLUSTER = E["MOAT_CLUSTER"]
LAB = E["MOAT_LAB"]
MOAT = E["MOAT_BIN"]
TRAFFIC = E["MOAT_TRAFFIC"]
NODE = E["MOAT_NODE"]
WEB_IP = E["MOAT_WEB_IP"]
OUT = E["MOAT_OUT"]
WEB_DIR = E["MOAT_WEB_DIR"]
AGENT_PID = int(E["MOAT_AGENT_PID"])  # the moatd that run.sh started
NAV = ["Protection status", "Protection management", "Network objects", "Alerts", "Detections", "Nodes"]
XSS = '<img src=x onerror="window.__xss=1">'
CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
                "--disable-extensions", "--lang=en-US", "--window-size=1366,768"]

passed = 0
failed = 0


def ok(name):
    global passed
    passed += 1
    print(f"ok {name}", flush=True)


def bad(name, why):
    global failed
    failed += 1
    print(f"FAIL {name}: {why}", flush=True)


def check(name, cond, why=""):
    if cond:
        ok(name)
    else:
        bad(name, why or "condition not met")
    return cond


# What a live page may do between finding an element and using it: re-render it.
RETRY = (StaleElementReferenceException, NoSuchElementException, ElementClickInterceptedException,
         ElementNotInteractableException)


def wait(fn, timeout=10.0, step=0.1):
    """fn() until it returns something true (elements re-rendered meanwhile retried), at most `timeout` s."""
    end = time.monotonic() + timeout
    while True:
        try:
            v = fn()
            if v:
                return v
        except RETRY:
            pass
        if time.monotonic() >= end:
            return None
        time.sleep(step)


def api(method, path, body=None, token=ADMIN):
    """The API as the CLI sees it: (status, JSON body or None)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + "/api/v1" + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, json.loads(text) if text else None


def connects():
    """True when client-1 reaches web-1 on tcp/80 in the lab."""
    r = subprocess.run([MOAT, "lab", "exec", "--name", LAB, "client-1", "--", TRAFFIC, "connect", "--tcp",
                        WEB_IP, "80", "--timeout-ms", "400"], capture_output=True, timeout=30)
    return r.returncode == 0


def connects_within(want, timeout=6.0):
    return wait(lambda: connects() == want, timeout=timeout, step=0.05) is not None


class Browser:
    """One headless Chromium with a fresh profile; quit() always removes both."""

    def __init__(self, name):
        self.name = name
        self.profile = tempfile.mkdtemp(prefix=f"moat-chrome-{name}-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in CHROME_FLAGS + [f"--user-data-dir={self.profile}"]:
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        try:
            self.d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        # What a 1366x768 laptop screen shows.
        self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False})
        self.console = []   # every browser log entry, by phase
        self.requests = []  # every URL the page asked for

    def quit(self):
        try:
            self.d.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # ---- reading the page
    def css(self, sel, root=None):
        return (root or self.d).find_element(By.CSS_SELECTOR, sel)

    def all(self, sel, root=None):
        return (root or self.d).find_elements(By.CSS_SELECTOR, sel)

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def h1(self):
        try:
            return self.css("main h1").text
        except NoSuchElementException:
            return ""

    def dialog(self):
        return wait(lambda: self.css("dialog[open]"), 5)

    def control(self, label, root=None):
        """The control a <label> with this text is for (the label's own text, before a ' *')."""
        lab = (root or self.d).find_element(By.XPATH, f".//label[normalize-space(text()[1])='{label}']")
        return self.d.find_element(By.ID, lab.get_attribute("for"))

    def error_of(self, control):
        """The text of the error place next to a form control."""
        return self.css(f'[data-error-for="{control.get_attribute("id")}"]').text

    def row(self, text, root="main", *more):
        """The text of the first table row under `root` holding `text` (and each of `more`), or None.
        Read in one script, so a re-render in between cannot leave a stale element."""
        return self.js("""const [root, needles] = arguments;
            const r = [...document.querySelectorAll(root + ' tbody tr')]
                .find((tr) => needles.every((n) => tr.innerText.includes(n)));
            return r ? r.innerText : null;""", root, [text, *more])

    def click(self, sel, by=By.CSS_SELECTOR, timeout=10):
        """Clicks what `sel` finds, found again if the page re-rendered it meanwhile."""
        def go():
            self.d.find_element(by, sel).click()
            return True
        if not wait(go, timeout):
            raise RuntimeError(f"nothing to click at {sel}")

    def nav(self, name):
        self.click(name, By.LINK_TEXT)
        return wait(lambda: self.h1() and name.split()[0] in self.h1(), 10)

    def shot(self, name):
        self.d.save_screenshot(os.path.join(OUT, f"{name}.png"))

    def set(self, control, value):
        control.clear()
        control.send_keys(value)

    # ---- what the browser saw
    def drain(self, phase):
        for e in self.d.get_log("browser"):
            self.console.append((phase, e))
        for e in self.d.get_log("performance"):
            m = json.loads(e["message"])["message"]
            if m.get("method") == "Network.requestWillBeSent":
                self.requests.append(m["params"]["request"]["url"])

    def console_errors(self, allowed=()):
        """Errors in the browser console but those of `allowed` (phase, HTTP status) pairs."""
        out = []
        for phase, e in self.console:
            if e["level"] != "SEVERE":
                continue
            m = re.search(r"/api/v1/\S* - Failed to load resource: the server responded with a status of (\d+)",
                          e["message"])
            if m and (phase, int(m.group(1))) in allowed:
                continue
            out.append(f"[{phase}] {e['message']}")
        return out


def sign_in(b, token):
    b.d.get(URL + "/")
    wait(lambda: b.all("form.signin"), 10)
    b.set(b.control("Token"), token)
    b.click("//button[normalize-space()='Sign in']", By.XPATH)
    return wait(lambda: len(b.all("header nav a")) == len(NAV), 10)


# ---------------------------------------------------------------------------
def static_checks():
    with urllib.request.urlopen(URL + "/", timeout=10) as r:
        csp = r.headers.get("Content-Security-Policy", "")
        page = r.read().decode()
        ctype = r.headers.get("Content-Type", "")
    check("GET / serves the console as text/html", r.status == 200 and ctype.startswith("text/html"), ctype)
    check("the console's Content-Security-Policy starts with default-src 'self'",
          csp.startswith("default-src 'self'") and "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp)
    inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) + re.findall(r"\son[a-z]+\s*=", page)
    check("index.html has no inline script or event handler attribute", not inline, str(inline))
    with urllib.request.urlopen(URL + "/assets/app.js", timeout=10) as r:
        ok_js = r.headers.get("Content-Type", "").startswith("text/javascript") and \
            r.headers.get("Content-Security-Policy", "").startswith("default-src 'self'")
    check("assets are served with their type and the same policy", ok_js)
    markup = []
    for f in sorted(os.listdir(WEB_DIR)):
        if f.endswith(".js"):
            text = open(os.path.join(WEB_DIR, f), encoding="utf-8").read()
            for pat in (r"\.innerHTML\b", r"\.outerHTML\b", r"insertAdjacentHTML", r"document\.write",
                        r"\beval\(", r"new Function\("):
                if re.search(pat, text):
                    markup.append(f"{f}: {pat}")
    check("the console's code never turns text into markup (no innerHTML, eval)", not markup, str(markup))


def scenario_admin(b):
    d = b.d
    # ---- sign-in: a wrong token is refused, then the admin token
    d.get(URL + "/")
    wait(lambda: b.all("form.signin"), 10)
    tok = b.control("Token")
    check("sign-in: the Token field has a real <label>", tok.tag_name == "input" and tok.get_attribute("type") == "password")
    check("sign-in: a 'Sign in' button", bool(d.find_elements(By.XPATH, "//button[normalize-space()='Sign in']")))
    b.shot("sign-in")
    b.set(tok, "moat_" + "0" * 64)
    tok.send_keys(Keys.ENTER)
    check("sign-in: a wrong token is refused with a message",
          wait(lambda: "not accepted" in b.css("#token-err").text, 10), b.css("#token-err").text)
    b.drain("wrong-token")
    b.set(b.control("Token"), ADMIN)
    b.control("Token").send_keys(Keys.ENTER)  # the keyboard signs in
    check("sign-in: the admin token signs in (by keyboard)", wait(lambda: len(b.all("header nav a")) == len(NAV), 10))
    stored = b.js("return [sessionStorage.getItem('moat.token') !== null, document.cookie]")
    check("the token is kept in sessionStorage, not in a cookie", stored[0] and stored[1] == "", str(stored))
    names = [a.text for a in b.all("header nav a")]
    check("navigation names the six pages", names == NAV, str(names))
    check("signing in lands on Protection status at /status",
          wait(lambda: b.h1() == "Protection status" and d.current_url == URL + "/status", 10), d.current_url)

    # ---- each page has its own URL; reload and back/forward work
    paths = {}
    for name in NAV:
        b.nav(name)
        paths[name] = d.current_url[len(URL):]
    check("each page has its own URL", len(set(paths.values())) == len(NAV) and paths["Alerts"] == "/alerts", str(paths))
    d.back()
    back = wait(lambda: b.h1() == "Detections" and d.current_url.endswith("/detections"), 10)
    d.forward()
    fwd = wait(lambda: b.h1() == "Nodes" and d.current_url.endswith("/nodes"), 10)
    check("back and forward move between pages", back and fwd, d.current_url)
    d.refresh()
    check("a reload keeps the page and the session", wait(lambda: b.h1() == "Nodes", 10), b.h1())
    d.get(URL + "/alerts?status=ignored")
    check("a page's filters live in its URL",
          wait(lambda: b.h1() == "Alerts" and Select(b.css("#af-status")).first_selected_option.text == "ignored", 10))
    b.drain("navigation")

    # ---- two objects through the form, one of them by keyboard only
    b.nav("Network objects")
    b.click("//button[normalize-space()='New object']", By.XPATH)
    dlg = b.dialog()
    first = d.switch_to.active_element
    check("a form dialog opens with the focus in its first field",
          first.get_attribute("id") == b.control("Name", dlg).get_attribute("id"))
    # name, Tab cluster, Tab kind, Tab namespace, Tab app; Enter submits.
    first.send_keys("client")
    for v in ("", "", "shop", "client"):
        d.switch_to.active_element.send_keys(Keys.TAB)
        if v:
            d.switch_to.active_element.send_keys(v)
    check("object form: the preview shows the workload the draft selects",
          wait(lambda: "shop/client-1" in b.css("dialog[open] .preview").text
               and "web-1" not in b.css("dialog[open] .preview").text, 10),
          b.css("dialog[open] .preview").text if b.all("dialog[open] .preview") else "no preview")
    b.shot("object-form")
    d.switch_to.active_element.send_keys(Keys.ENTER)
    check("object 'client' created with the keyboard",
          wait(lambda: not b.all("dialog[open]") and b.row("client"), 10))
    b.click("//button[normalize-space()='New object']", By.XPATH)
    dlg = b.dialog()
    b.set(b.control("Name", dlg), "web")
    b.set(b.control("Namespace", dlg), "shop")
    b.set(b.control("App", dlg), "web*")
    b.set(b.control("Images", dlg), "nginx:*")
    b.set(b.control("Labels", dlg), "tier=frontend")
    b.set(b.control("Description", dlg), XSS)
    wait(lambda: "shop/web-1" in b.css("dialog[open] .preview").text, 10)
    b.click("//dialog[@open]//button[normalize-space()='Create object']", By.XPATH)
    check("object 'web' created through the form", wait(lambda: not b.all("dialog[open]") and b.row("web*"), 10))
    st, objs = api("GET", "/objects?name=web")
    check("the objects are stored as typed", st == 200 and objs["total"] == 1 and objs["items"][0]["images"] == ["nginx:*"]
          and objs["items"][0]["labels"] == ["tier=frontend"] and objs["items"][0]["description"] == XSS, str(objs))
    web_id = objs["items"][0]["id"]

    # ---- user data is text: the description holding markup shows as text and runs nothing
    shown = b.js("""const r = [...document.querySelectorAll('main tbody tr')].find((tr) => tr.innerText.includes('web*'));
        return r ? r.querySelector('span.descr').textContent : '';""")
    xss = b.js("return [window.__xss === undefined, document.querySelectorAll('img[src=\"x\"]').length]")
    check("a description holding markup is shown as text", shown == XSS, shown)
    check("... and runs nothing (no img element, no handler ran)", xss == [True, 0], str(xss))
    b.drain("objects")

    # ---- a block rule through the form; a validation error shows next to its field
    b.nav("Protection management")
    wait(lambda: b.row(CLUSTER), 10)
    b.click(f'a[href="/management/{CLUSTER}"]')
    wait(lambda: b.h1() == f"Rules of cluster {CLUSTER}", 10)
    b.click("//button[normalize-space()='New rule']", By.XPATH)
    dlg = b.dialog()
    b.set(b.control("Name", dlg), "block-web")
    b.set(b.control("Priority", dlg), "0")
    Select(b.control("Source object", dlg)).select_by_value("client")
    Select(b.control("Destination 1 object", dlg)).select_by_value("web")
    ports = b.control("Destination 1 ports", dlg)
    b.set(ports, "80/90,85/100")
    Select(b.control("Protocol", dlg)).select_by_value("tcp")
    Select(b.control("Action", dlg)).select_by_value("block")
    b.click("//dialog[@open]//button[normalize-space()='Create rule']", By.XPATH)
    got = wait(lambda: "overlap" in b.error_of(b.control("Destination 1 ports", b.dialog())), 10)
    ports = b.control("Destination 1 ports", b.dialog())
    prio = b.control("Priority", b.dialog())
    same_field = b.js("return arguments[0].closest('.field').contains(document.querySelector('[data-error-for=\"' + arguments[0].id + '\"]'))", ports)
    check("a validation error shows next to its field (ports overlap)",
          got and same_field and ports.get_attribute("aria-invalid") == "true", b.error_of(ports))
    check("... each field its own (priority out of range)", "out of range" in b.error_of(prio), b.error_of(prio))
    check("... and the focus moves to the first field in error",
          d.switch_to.active_element.get_attribute("id") == prio.get_attribute("id"))
    b.shot("rule-form-errors")
    st, rules = api("GET", f"/clusters/{CLUSTER}/rules?name=block-web")
    check("a refused form stores nothing", st == 200 and rules["total"] == 0, str(rules))
    b.drain("rule-errors")
    b.set(ports, "80")
    b.set(prio, "10")
    b.click("//dialog[@open]//button[normalize-space()='Create rule']", By.XPATH)
    check("rule 'block-web' created through the form", wait(lambda: not b.all("dialog[open]") and b.row("block-web"), 10))
    st, rules = api("GET", f"/clusters/{CLUSTER}/rules?name=block-web")
    rule = rules["items"][0] if st == 200 and rules["total"] == 1 else {}
    check("the rule is stored as typed", rule.get("source") == "client" and rule.get("action") == "block"
          and rule.get("priority") == 10 and rule.get("protocol") == "tcp"
          and rule.get("destinations") == [{"object": "web", "ports": "80"}], str(rule))
    row = b.row("block-web")
    check("the rule list says it is in effect on 0/1 nodes while defense is off",
          row is not None and "0/1 nodes" in row and "defense off" in row, row)
    check("traffic passes while defense is off", connects())
    b.drain("rule")

    # ---- defense on
    b.nav("Protection management")
    switch = f'button[role="switch"][aria-label="Defense of cluster {CLUSTER}"]'
    check("the defense switch reads off", wait(lambda: b.css(switch).get_attribute("aria-checked") == "false", 10))
    b.click(switch)
    check("the defense switch turns on",
          wait(lambda: b.css(f'button[role="switch"][aria-label="Defense of cluster {CLUSTER}"]').get_attribute("aria-checked") == "true", 10))
    st, c = api("GET", f"/clusters/{CLUSTER}")
    check("... and the cluster's defense is on", st == 200 and c["defense"] == "on", str(c))
    b.shot("management")
    b.drain("defense")

    # ---- traffic is blocked; the alert appears on Protection status without a reload
    b.nav("Protection status")
    b.js("window.__stay = 1")
    check("with defense on, the block rule blocks client -> web:80", connects_within(False))
    row = wait(lambda: b.row("block-web", "#newest-alerts"), 20)
    check("the alert appears on Protection status without a reload",
          row is not None and b.js("return window.__stay") == 1, "no alert row" if row is None else "the page reloaded")
    if row is not None:
        check("... as an aggregated row with its attempts", "block" in row and re.search(r"\b\d+\b", row), row)
    check("the risk cards count it", wait(lambda: b.css(".cards .card-value").text != "0", 10))
    b.shot("protection-status")
    b.drain("alert")

    # ---- from the alert: open it, change its rule's action to allow, mark it handled
    st, al = api("GET", f"/alerts?cluster={CLUSTER}")
    alert_id = next((a["id"] for a in al["items"] if (a.get("rule") or {}).get("name") == "block-web"), None)
    if alert_id is None:
        bad("alert dialog", "no alert of block-web to open")
        return
    b.click(f'#newest-alerts tr[data-alert="{alert_id}"] button.link')
    dlg = b.dialog()
    wait(lambda: b.all("#alert-rule-action"), 10)
    check("the alert dialog shows the rule behind it", "block-web" in dlg.text and b.all("#alert-rule-action"))
    b.shot("alert-dialog")
    link = d.find_elements(By.XPATH, "//dialog[@open]//a[normalize-space()='Open rule']")
    check("... with a link to open the rule", bool(link) and link[0].get_attribute("href").endswith(
        f"/management/{CLUSTER}?rule={rule.get('id')}"))
    Select(b.css("#alert-rule-action")).select_by_value("allow")
    b.click("//dialog[@open]//button[normalize-space()='Change action']", By.XPATH)
    check("the rule's action is changed to allow from the alert",
          wait(lambda: api("GET", f"/clusters/{CLUSTER}/rules/{rule.get('id')}")[1].get("action") == "allow", 10))
    check("the traffic passes again", connects_within(True))
    b.click("//dialog[@open]//button[normalize-space()='Mark handled']", By.XPATH)
    check("the alert is marked handled from its dialog",
          wait(lambda: api("GET", f"/alerts/{alert_id}")[1].get("status") == "handled", 10))
    b.click("dialog[open] .dlg-head button")
    b.drain("alert-actions")

    # ---- open the rule from its link: the rule form, edit it
    d.get(URL + f"/management/{CLUSTER}?rule={rule.get('id')}")
    dlg = b.dialog()
    check("a rule's URL opens its form", dlg is not None and "block-web" in dlg.text)
    if dlg is not None:
        check("... showing the action changed from the alert",
              Select(b.control("Action", dlg)).first_selected_option.get_attribute("value") == "allow")
        b.set(b.control("Priority", dlg), "12")
        b.click("//dialog[@open]//button[normalize-space()='Save rule']", By.XPATH)
        check("a rule is edited through its form",
              wait(lambda: api("GET", f"/clusters/{CLUSTER}/rules/{rule.get('id')}")[1].get("priority") == 12, 10))
    b.shot("rules")

    # ---- batch disable/enable, delete a rule
    wait(lambda: not b.all("dialog[open]") and b.row("block-web"), 10)
    b.click(f'input[aria-label="Select rule block-web"]')
    b.click("//div[contains(@class,'batch')]//button[normalize-space()='Disable']", By.XPATH)
    check("selected rules are disabled at once",
          wait(lambda: api("GET", f"/clusters/{CLUSTER}/rules/{rule.get('id')}")[1].get("enabled") is False, 10))
    wait(lambda: "no" in (b.row("block-web") or "").split(), 10)
    b.click(f'input[aria-label="Select rule block-web"]')
    b.click("//div[contains(@class,'batch')]//button[normalize-space()='Enable']", By.XPATH)
    check("... and enabled again",
          wait(lambda: api("GET", f"/clusters/{CLUSTER}/rules/{rule.get('id')}")[1].get("enabled") is True, 10))
    st, tmp = api("POST", f"/clusters/{CLUSTER}/rules", {"name": "temp", "source": "any", "destinations": [{"object": "web"}],
                                                           "action": "alert", "priority": 900})
    check("a rule made elsewhere (the API) appears in the list without a reload", wait(lambda: b.row("temp"), 10))
    if st == 201:
        b.click(f'button[data-key="del:{tmp["id"]}"]')
        b.dialog()
        b.click("//dialog[@open]//button[normalize-space()='Delete']", By.XPATH)
        check("a rule is deleted after a confirmation",
              wait(lambda: api("GET", f"/clusters/{CLUSTER}/rules/{tmp['id']}")[0] == 404 and not b.row("temp"), 10))
    b.drain("rules")

    # ---- objects: a used object cannot be deleted (the rules are named); live updates from the CLI
    b.nav("Network objects")
    wait(lambda: b.row("web*"), 10)
    b.click(f'button[data-key="del:{web_id}"]')
    b.dialog()
    b.click("//dialog[@open]//button[normalize-space()='Delete']", By.XPATH)
    refused = wait(lambda: "block-web" in b.css("dialog[open]").text and "Not deleted" in b.css("dialog[open]").text, 10)
    check("deleting an object a rule uses is refused, naming the rule", refused,
          b.css("dialog[open]").text if b.all("dialog[open]") else "no dialog")
    check("... and the object is still there", api("GET", f"/objects/{web_id}")[0] == 200)
    if b.all("dialog[open]"):
        b.click("//dialog[@open]//div[@class='actions']/button[normalize-space()='Close']", By.XPATH)
    b.drain("delete-refused")
    doc = os.path.join(OUT, "cli-object.yaml")
    with open(doc, "w") as f:
        f.write("kind: NetworkObject\nname: from-cli\nnamespace: shop\napp: client\n")
    subprocess.run([MOAT, "apply", "-f", doc], capture_output=True, timeout=30,
                   env={**os.environ, "MOAT_SERVER": URL, "MOAT_TOKEN": ADMIN})
    os.unlink(doc)
    check("an object made with the CLI appears without a reload", wait(lambda: b.row("from-cli"), 10))
    b.click('input[aria-label="Select object from-cli"]')
    b.click('button[data-key="batch:delete"]')
    b.dialog()
    b.click("//dialog[@open]//button[normalize-space()='Delete']", By.XPATH)
    check("selected objects are deleted at once",
          wait(lambda: api("GET", "/objects?name=from-cli")[1]["total"] == 0 and not b.row("from-cli"), 10))
    b.click(f'button[data-key="edit:{web_id}"]')
    dlg = b.dialog()
    check("editing an object previews what it selects now",
          wait(lambda: "shop/web-1" in b.css("dialog[open] .preview").text, 10))
    b.click("dialog[open] .dlg-head button")
    b.shot("objects")
    b.drain("objects-2")

    # ---- alerts: the list, filters, bulk status
    b.nav("Alerts")
    wait(lambda: b.row("block-web"), 10)
    row = b.row("block-web")
    check("the alert list shows the SPEC fields", row is not None and all(x in row for x in
          (CLUSTER, NODE, "policy", "shop/client-1", "shop/web-1", "tcp", "block", "handled")), row)
    Select(b.css("#af-status")).select_by_value("unhandled")
    check("the status filter applies", wait(lambda: b.row("block-web") is None and d.current_url.endswith("status=unhandled"), 10))
    Select(b.css("#af-status")).select_by_value("")
    wait(lambda: b.row("block-web"), 10)
    b.click('input[aria-label="Select all rows shown"]')
    b.click("//div[contains(@class,'batch')]//button[normalize-space()='Ignore']", By.XPATH)
    check("alerts are marked ignored in bulk",
          wait(lambda: all(a["status"] == "ignored" for a in api("GET", f"/alerts?cluster={CLUSTER}")[1]["items"]), 10))
    check("... and the list shows it", wait(lambda: b.row("block-web", "main", "ignored") and "0 selected" in b.css(".batch").text, 10))
    b.shot("alerts")
    b.drain("alerts")

    # ---- nodes
    b.nav("Nodes")
    text = wait(lambda: b.row(NODE), 10) or ""
    check("the node list shows OS, kernel, certification, datapath state, agent, heartbeat",
          all(x in text for x in (CLUSTER, "enforcing", os.uname().release)) and re.search(r"\d+ s ago", text), text)
    b.click(f'button[data-key="wl:{CLUSTER}/{NODE}"]')
    check("the node list shows the detections the node's datapath runs",
          "brute_force" in text and "threat_intel" in text, text)
    check("a node's workloads are shown on demand",
          wait(lambda: "shop/client-1" in b.css("main").text and "10.83.1.11" in b.css("main").text, 10))
    b.shot("nodes")
    b.drain("nodes")


def brute_force():
    """client-1 knocks on web-1's port 22 for 2 s. The cluster's default action drops the SYNs, so each
    attempt waits out its 40 ms: ~50 attempts, far past twice the threshold (10)."""
    r = subprocess.run([MOAT, "lab", "exec", "--name", LAB, "client-1", "--", TRAFFIC, "rate", "--tcp", WEB_IP, "22",
                        "--duration-ms", "2000", "--timeout-ms", "40"], capture_output=True, timeout=60, text=True)
    return f"rc {r.returncode}: {r.stdout.strip()} {r.stderr.strip()}"


def threat_summary():
    return api("GET", f"/clusters/{CLUSTER}/threat-intel/summary")[1] or {}


def scenario_detections(b):
    """Detections: a real brute force in the lab puts client-1 in quarantine; the page lists it and
    releases it; a threat list is refused with its line, then uploaded (client-1 blocked) and removed."""
    d = b.d
    client = "10.83.1.10"
    st, _ = api("PATCH", f"/clusters/{CLUSTER}", {"detections": {
        "brute_force": {"enabled": True, "action": "block", "threshold": 10, "window": 10, "quarantine": 300,
                        "ports": [22]},
        "threat_intel": {"enabled": True, "action": "block"}}})
    check("detections: brute force and threat list switched on (API)", st == 200, str(st))
    check("detections: before the attack client-1 reaches web-1", connects_within(True, 10))
    b.nav("Detections")
    row = wait(lambda: b.row("brute force", "main", "block", "10 in 10 s", "22"), 10)
    check("detections: the page shows each detection's setting", row is not None, b.css("main").text[:400])
    check("detections: no quarantine at first", wait(lambda: "No source is in quarantine" in b.css("main").text, 10))

    attack = brute_force()
    row = wait(lambda: b.row(client, "main", "brute force", NODE), 15)
    check("detections: the source of a real brute force appears in quarantine, with its reason and node",
          row is not None, f"{attack}; {api('GET', f'/clusters/{CLUSTER}')[1]}; "
          f"{api('GET', f'/alerts?cluster={CLUSTER}&limit=5')[1]}")
    check("... and it is held: client-1 no longer reaches web-1", connects_within(False, 5))
    b.shot("detections-quarantine")
    b.click(f'button[data-key="release:{client}"]')
    dlg = b.dialog()
    check("detections: a release asks to confirm, naming the address", dlg is not None and client in dlg.text)
    b.click("//dialog[@open]//button[normalize-space()='Release']", By.XPATH)
    check("detections: released through the page, the server lists it no more",
          wait(lambda: api("GET", f"/clusters/{CLUSTER}/quarantines")[1]["total"] == 0, 10))
    check("... the page says so", wait(lambda: "No source is in quarantine" in b.css("main").text, 10))
    check("... and client-1 reaches web-1 again", connects_within(True, 10))
    b.drain("detections")

    # ---- the threat list: a bad one is refused by line and stores nothing
    area = b.control("New list")
    b.set(area, f"{client}/32 ok-line\n10.0.0.0/33 bad-prefix\n")
    b.click("//main//button[normalize-space()='Replace the list']", By.XPATH)
    check("detections: a list that does not parse shows its error by line",
          wait(lambda: "line 2" in b.css("main .form-errors").text, 10), b.css("main").text[-400:])
    check("... and stores nothing", threat_summary().get("version") is None)
    b.drain("threat-errors")
    area = b.control("New list")
    b.set(area, f"# from the console\n{client}/32 test-bad-actor\n")
    b.click("//main//button[normalize-space()='Replace the list']", By.XPATH)
    check("detections: a list uploaded through the page is stored",
          wait(lambda: threat_summary().get("prefixes") == 1, 10), str(threat_summary()))
    check("... the page shows its prefixes and version",
          wait(lambda: "1 prefix(es)" in b.css("main").text and threat_summary()["version"] in b.css("main").text, 10))
    check("... and it blocks client-1 in the kernel", connects_within(False, 10))
    b.shot("detections-threat-list")
    b.click('button[data-key="threats:delete"]')
    b.dialog()
    b.click("//dialog[@open]//button[normalize-space()='Remove']", By.XPATH)
    check("detections: the list is removed after a confirmation",
          wait(lambda: threat_summary().get("version") is None, 10))
    check("... and client-1 reaches web-1 again", connects_within(True, 10))
    # a list that lists nobody of the lab stays for the viewer to see
    b.set(b.control("New list"), "192.0.2.0/24 documentation-range\n")
    b.click("//main//button[normalize-space()='Replace the list']", By.XPATH)
    wait(lambda: threat_summary().get("prefixes") == 1, 10)
    b.drain("detections-2")


def scenario_viewer(admin, viewer):
    """A viewer sees everything read-only, live; what it tries anyway gets the API's 403."""
    b = viewer
    d = b.d
    check("a viewer token signs in", sign_in(b, VIEWER))
    check("the viewer is shown as read-only", "read-only" in b.css("header .who").text)
    b.nav("Protection management")
    sw = wait(lambda: b.css(f'button[role="switch"][aria-label="Defense of cluster {CLUSTER}"]'), 10)
    check("viewer: the defense switch shows its state and is disabled",
          sw.get_attribute("aria-checked") == "true" and not sw.is_enabled())
    check("viewer: no New cluster, no selection, no Delete",
          not d.find_elements(By.XPATH, "//button[normalize-space()='New cluster' or normalize-space()='Delete']")
          and not b.all("main input[type=checkbox]"))
    # the admin switches defense off in the other browser: the viewer sees it without a reload
    a = admin
    a.nav("Protection management")
    wait(lambda: a.row(CLUSTER), 10)
    a.click(f'input[aria-label="Select cluster {CLUSTER}"]')
    a.click('button[data-key="batch:off"]')
    check("admin: the selected clusters' defense goes off at once",
          wait(lambda: api("GET", f"/clusters/{CLUSTER}")[1]["defense"] == "off", 10))
    check("viewer: a change made in another browser appears without a reload",
          wait(lambda: b.css(f'button[role="switch"][aria-label="Defense of cluster {CLUSTER}"]').get_attribute("aria-checked") == "false", 10))
    a.click(f'button[role="switch"][aria-label="Defense of cluster {CLUSTER}"]')
    wait(lambda: api("GET", f"/clusters/{CLUSTER}")[1]["defense"] == "on", 10)
    check("viewer: ... and back on",
          wait(lambda: b.css(f'button[role="switch"][aria-label="Defense of cluster {CLUSTER}"]').get_attribute("aria-checked") == "true", 10))
    a.drain("viewer-admin")
    # tried anyway: the switch forced enabled and clicked
    b.js("const s = document.querySelector(arguments[0]); s.disabled = false;", f'button[role="switch"][aria-label="Defense of cluster {CLUSTER}"]')
    b.click(f'button[role="switch"][aria-label="Defense of cluster {CLUSTER}"]')
    check("viewer: a change tried anyway shows the API's 403",
          wait(lambda: "403" in b.css("#banner").text and "admin" in b.css("#banner").text, 10),
          b.css("#banner").text)
    check("... and changes nothing", api("GET", f"/clusters/{CLUSTER}")[1]["defense"] == "on")
    b.shot("viewer-403")
    b.drain("viewer-403")
    b.click(f'a[href="/management/{CLUSTER}"]')
    wait(lambda: b.row("block-web"), 10)
    check("viewer: no New rule, no Delete, no selection on the rules page",
          not d.find_elements(By.XPATH, "//button[normalize-space()='New rule' or normalize-space()='Delete']")
          and not b.all("main input[type=checkbox]"))
    b.click("button[data-key^='edit:']")
    dlg = b.dialog()
    controls = b.all("input, select, textarea", dlg)
    check("viewer: a rule opens read-only (every control disabled, no Save)",
          controls and all(not c.is_enabled() for c in controls)
          and not d.find_elements(By.XPATH, "//dialog[@open]//button[@type='submit']"))
    b.click("dialog[open] .dlg-head button")
    b.nav("Network objects")
    wait(lambda: b.row("web*"), 10)
    check("viewer: no New object, no Delete on Network objects",
          not d.find_elements(By.XPATH, "//button[normalize-space()='New object' or normalize-space()='Delete' or normalize-space()='Delete selected']"))
    b.nav("Alerts")
    wait(lambda: b.row("block-web"), 10)
    check("viewer: no bulk status change on Alerts", not b.all("main input[type=checkbox]") and not b.all(".batch button"))
    # the alert of the policy rule (the detections scenario left newer ones, of other kinds)
    b.click("//main//tbody/tr[contains(., 'block-web')]//button[contains(@class,'link')]", By.XPATH)
    dlg = b.dialog()
    wait(lambda: "block-web" in b.css("dialog[open]").text, 10)
    check("viewer: the alert dialog offers no status or rule change",
          not d.find_elements(By.XPATH, "//dialog[@open]//button[normalize-space()='Mark handled' or normalize-space()='Ignore' or normalize-space()='Change action']"))
    b.click("dialog[open] .dlg-head button")
    b.nav("Detections")
    check("viewer: Detections shows the threat list's summary",
          wait(lambda: "1 prefix(es)" in b.css("main").text, 10), b.css("main").text[:400])
    check("viewer: no release, no upload, no removal on Detections",
          not d.find_elements(By.XPATH, "//main//button[normalize-space()='Release' or normalize-space()='Replace the list' or normalize-space()='Remove the list']")
          and not b.all("main textarea"))
    b.drain("viewer")

    # the agent stops: its node goes offline, the cluster turns abnormal, and the pages say so
    os.kill(AGENT_PID, signal.SIGTERM)
    b.nav("Protection management")
    row = wait(lambda: b.row(CLUSTER, "main", "abnormal"), 20)
    check("a cluster whose node stopped turns abnormal, naming the node and the reason",
          row is not None and NODE in row and "offline" in row and "heartbeat" in row, row or b.css("main").text)
    b.shot("management-abnormal")
    b.click(f'a[href="/management/{CLUSTER}"]')
    row = wait(lambda: b.row("block-web", "main", "0/1 nodes"), 15)
    check("... and its rules are in effect on 0/1 nodes", row is not None, b.css("main").text[:300])
    b.nav("Nodes")
    row = wait(lambda: b.row(NODE, "main", "offline"), 15)
    check("... and Nodes shows the node offline", row is not None)
    b.drain("offline")


def network_and_console(browsers):
    for b in browsers:
        # What goes on the network (http, https, ws, wss); chrome:// and data: are the browser's own.
        net = [u for u in b.requests if re.match(r"(https?|wss?|ftp)://", u)]
        foreign = [u for u in net if not u.startswith(URL + "/")]
        check(f"{b.name}: no request leaves the server's origin ({len(net)} requests)", net and not foreign,
              str(foreign[:5]))
        resources = b.js("return performance.getEntriesByType('resource').map(e => e.name)")
        check(f"{b.name}: every resource of the page is the server's",
              all(r.startswith(URL + "/") for r in resources), str([r for r in resources if not r.startswith(URL + "/")][:5]))
    admin, viewer = browsers
    errs = admin.console_errors({("wrong-token", 401), ("rule-errors", 400), ("delete-refused", 409),
                                 ("threat-errors", 400)})
    check("admin: the browser console has no errors (but the refusals asked for)", not errs, "\n".join(errs[:5]))
    errs = viewer.console_errors({("viewer-403", 403)})
    check("viewer: the browser console has no errors (but the 403 asked for)", not errs, "\n".join(errs[:5]))


def main():
    static_checks()
    browsers = []
    try:
        admin = Browser("admin")
        browsers.append(admin)
        try:
            scenario_admin(admin)
        except Exception:
            bad("admin scenario", traceback.format_exc().strip().splitlines()[-1])
            traceback.print_exc()
            admin.shot("failure-admin")
        try:
            scenario_detections(admin)
        except Exception:
            bad("detections scenario", traceback.format_exc().strip().splitlines()[-1])
            traceback.print_exc()
            admin.shot("failure-detections")
        viewer = Browser("viewer")
        browsers.append(viewer)
        try:
            scenario_viewer(admin, viewer)
        except Exception:
            bad("viewer scenario", traceback.format_exc().strip().splitlines()[-1])
            traceback.print_exc()
            viewer.shot("failure-viewer")
        for b in browsers:
            b.drain("end")
        network_and_console(browsers)
    except WebDriverException as e:
        bad("browser", str(e).splitlines()[0])
    finally:
        for b in browsers:
            b.quit()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
