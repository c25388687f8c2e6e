#!/usr/bin/env python3
"""Whole-page load benchmark for Fabrikam, run by scripts/load.sh (which builds the binaries).

In one run, on 127.0.0.1 only:
  1. cold start: exec `fabrikam demo` on a new database, time until /healthz answers; stop it;
     exec again on the same (now existing) database and time it again;
  2. sign alice in the way a browser does (password, then the TOTP step-up on a salary page),
     so every signed-in page, the salary page included, is measured with her session;
  3. start the bare actix-web baseline (examples/bare.rs) serving a page as large as the
     salary page;
  4. run wrk on every page and on the baseline, alternating, ROUNDS rounds; print req/s,
     p50/p99 latency and the ratio to the baseline of the same round (median over rounds);
  5. check the audit trail: salary_viewed rows == salary pages wrk received (it may be ahead by
     the requests still in flight when a wrk round stopped, at most CONNECTIONS per round);
  6. print the peak RSS of the Fabrikam process: over its whole life (alice's sign-in included:
     Fabrikam ID's argon2 check takes a 19 MiB buffer, released after an idle spell) and during
     the load rounds alone (the peak is reset, with /proc/PID/clear_refs, once that buffer is
     released and before the first round).

Environment: FABRIKAM_BIN, BARE_BIN (set by load.sh), DURATION (s per wrk run, default 10),
ROUNDS (default 3), CONNECTIONS (default 32), THREADS (default 2), PAGES (a subset of the page
names below, separated by `|`, default all).
"""

import base64
import hashlib
import hmac
import http.client
import http.cookiejar
import os
import re
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ALICE_TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
DURATION = int(os.environ.get("DURATION", "10"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "32"))
THREADS = int(os.environ.get("THREADS", "2"))

# (name, path, signed in as alice?)
PAGES = [
    ("/healthz", "/healthz", False),
    ("/ (anonymous)", "/", False),
    ("/ (alice)", "/", True),
    ("/me", "/me", True),
    ("/customers", "/customers", True),
    ("/customers/1", "/customers/1", True),
    ("/employees", "/employees", True),
    ("/employees/1/salary", "/employees/1/salary", True),
]
SALARY = "/employees/1/salary"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def totp(secret_b32, at=None):
    """RFC 6238 with its defaults: SHA-1, 6 digits, 30 s."""
    key = base64.b32decode(secret_b32)
    step = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 15
    code = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 10**6
    return "%06d" % code


def healthz_ok(port):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


class Fabrikam:
    """`fabrikam demo` on free loopback ports with its database in `work`."""

    def __init__(self, binary, work):
        self.site_port, self.idp_port = free_port(), free_port()
        self.db = os.path.join(work, "load.db")
        env = dict(os.environ)
        env.update(
            FABRIKAM_ADDR=f"127.0.0.1:{self.site_port}",
            IDP_ADDR=f"127.0.0.1:{self.idp_port}",
            DATABASE_URL=f"sqlite:{self.db}",
            STEPUP_MAX_AGE_SECS="3600",
            RUST_LOG=os.environ.get("RUST_LOG", "info"),
            # The public URLs default to localhost (for passkeys), which may resolve to ::1 where
            # nothing listens; this benchmark never uses passkeys, so it stays on 127.0.0.1.
            FABRIKAM_PUBLIC_URL=f"http://127.0.0.1:{self.site_port}",
            IDP_ISSUER_URL=f"http://127.0.0.1:{self.idp_port}",
        )
        env.pop("OIDC_ISSUER_URL", None)
        self.log = open(os.path.join(work, "server.log"), "ab")
        started = time.perf_counter()
        self.proc = subprocess.Popen([binary, "demo"], env=env, stdout=self.log, stderr=self.log)
        deadline = started + 30
        while not healthz_ok(self.site_port):
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                raise SystemExit(f"fabrikam did not start; see {work}/server.log")
            time.sleep(0.002)
        self.start_ms = (time.perf_counter() - started) * 1000
        self.site = f"http://127.0.0.1:{self.site_port}"
        self.idp = f"http://127.0.0.1:{self.idp_port}"

    def memory_mb(self, field):
        """VmHWM (peak RSS) or VmRSS, in MB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def peak_rss_mb(self):
        return self.memory_mb("VmHWM")

    def reset_peak_rss(self):
        """Starts VmHWM again from the current RSS (Linux: `5` into clear_refs)."""
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5")

    def wait_for_argon2_release(self, before_mb, timeout=30):
        """Waits until the RSS has dropped by most of an argon2 buffer (19 MiB), which Fabrikam
        ID gives back 10 s after the last password check; returns the seconds waited or None."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.memory_mb("VmRSS") < before_mb - 15:
                return time.perf_counter() - started
            time.sleep(0.25)
        return None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Browser:
    """A cookie jar and urllib, following redirects across both servers as a browser does."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, url):
        with self.opener.open(url, timeout=10) as r:
            return r.geturl(), r.read().decode()

    def post(self, url, fields):
        data = urllib.parse.urlencode(fields).encode()
        with self.opener.open(url, data=data, timeout=10) as r:
            return r.geturl(), r.read().decode()

    def cookie(self, name):
        for c in self.jar:
            if c.name == name:
                return c.value
        return None


def form_of(url, html, field):
    """(action URL, hidden fields) of the form that has an input named `field`."""
    for form in re.findall(r"<form\b.*?</form>", html, re.S):
        if re.search(rf'name="{field}"', form):
            action = re.search(r'action="([^"]*)"', form).group(1)
            hidden = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form))
            return urllib.parse.urljoin(url, action.replace("&amp;", "&")), hidden
    raise SystemExit(f"no form with {field} at {url}")


def sign_in_alice(site):
    """Password, then the step-up on a salary page with her TOTP; returns her session cookie."""
    b = Browser()
    url, html = b.get(f"{site}/login?return_to=/")
    action, hidden = form_of(url, html, "password")
    b.post(action, {**hidden, "username": "alice", "password": "alice-password"})
    url, html = b.get(site + SALARY)
    action, hidden = form_of(url, html, "code")
    url, html = b.post(action, {**hidden, "code": totp(ALICE_TOTP)})
    if not url.endswith(SALARY) or "Salary" not in html:
        raise SystemExit(f"the step-up did not reach the salary page (ended at {url})")
    session = b.cookie("fabrikam_session")
    if not session:
        raise SystemExit("no intranet session after signing in")
    return session


def status_and_size(url, cookie=None):
    req = urllib.request.Request(url, headers={"Cookie": f"fabrikam_session={cookie}"} if cookie else {})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=10) as r:
            return r.status, len(r.read())
    except urllib.error.HTTPError as e:
        return e.code, 0


def fresh_session(site, cookie):
    """The session cookie as the server last wrote it. The intranet rewrites a session's
    last-seen stamp at most every 300 s (SESSION_IDLE_TIMEOUT_SECS / 6) and sends the new
    cookie; wrk would keep sending the old one, so every request after that point would pay
    for a rewrite. One request before each run takes the new cookie, if any."""
    req = urllib.request.Request(f"{site}/me", headers={"Cookie": f"fabrikam_session={cookie}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()
        for header in r.headers.get_all("Set-Cookie") or []:
            m = re.match(r"fabrikam_session=([^;]+)", header)
            if m:
                return m.group(1)
    return cookie


def wrk(url, cookie=None):
    """(req/s, p50 ms, p99 ms, responses received, non-2xx/3xx) of one wrk run."""
    args = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency"]
    if cookie:
        args += ["-H", f"Cookie: fabrikam_session={cookie}"]
    out = subprocess.run(args + [url], capture_output=True, text=True, check=True).stdout

    def ms(label):
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, ms("50"), ms("99"), total, int(m.group(1)) if m else 0


def main():
    fabrikam_bin, bare_bin = os.environ["FABRIKAM_BIN"], os.environ["BARE_BIN"]
    wanted = os.environ.get("PAGES")
    pages = [p for p in PAGES if not wanted or p[0] in wanted.split("|")]
    work = tempfile.mkdtemp(prefix="fabrikam-load-")
    print(f"binary {fabrikam_bin}; wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s, {ROUNDS} rounds; {os.cpu_count()} cores")

    # 1. Cold start, new database then existing database.
    first = Fabrikam(fabrikam_bin, work)
    first.stop()
    app = Fabrikam(fabrikam_bin, work)
    print(f"cold start to /healthz: {first.start_ms:.0f} ms on a new database, {app.start_ms:.0f} ms on an existing one")
    bare = None
    try:
        # 2. alice, signed in with password + TOTP.
        session = sign_in_alice(app.site)
        for name, path, signed_in in pages:
            status, _ = status_and_size(app.site + path, session if signed_in else None)
            if status != 200:
                raise SystemExit(f"{name} answers {status}, not 200: not measuring redirects")
        _, salary_bytes = status_and_size(app.site + SALARY, session)
        rows_before = audit_rows(app.db)
        signed_in_mb = app.memory_mb("VmRSS")
        waited = app.wait_for_argon2_release(signed_in_mb)
        at_rest_mb = app.memory_mb("VmRSS")
        if waited is None:
            print(f"RSS after sign-in {signed_in_mb:.1f} MB; no drop by an argon2 buffer within 30 s "
                  "(kept, or already released before the first reading)")
        else:
            print(f"RSS after sign-in {signed_in_mb:.1f} MB, {at_rest_mb:.1f} MB once Fabrikam ID released "
                  f"its argon2 buffer ({waited:.0f} s later)")
        lifetime_peak_mb = app.peak_rss_mb()
        app.reset_peak_rss()

        # 3. The bare baseline, serving as many bytes as the salary page.
        bare_port = free_port()
        bare = subprocess.Popen(
            [bare_bin],
            env={**os.environ, "BARE_ADDR": f"127.0.0.1:{bare_port}", "BARE_BYTES": str(salary_bytes)},
            stdout=subprocess.DEVNULL,
        )
        for _ in range(1000):
            try:
                if status_and_size(f"http://127.0.0.1:{bare_port}/")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.01)
        else:
            raise SystemExit("the bare baseline did not start")

        # 4. Alternating rounds.
        results = {name: [] for name, _, _ in pages}
        baseline = []
        salary_received = 0
        for r in range(ROUNDS):
            base = wrk(f"http://127.0.0.1:{bare_port}/")
            baseline.append(base)
            print(f"round {r + 1}: bare {base[0]:.0f} req/s", flush=True)
            for name, path, signed_in in pages:
                if signed_in:
                    session = fresh_session(app.site, session)
                res = wrk(app.site + path, session if signed_in else None)
                results[name].append((res, res[0] / base[0]))
                if path == SALARY:
                    salary_received += res[3] - res[4]
                if res[4]:
                    print(f"  warning: {name}: {res[4]} responses were not 2xx/3xx")

        print()
        print(f"{'page':<24} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>7}")
        b = statistics.median(x[0] for x in baseline)
        print(f"{'bare baseline':<24} {b:>10.0f} {statistics.median(x[1] for x in baseline):>8.2f} "
              f"{statistics.median(x[2] for x in baseline):>8.2f} {1:>7.3f}   ({salary_bytes} B page)")
        for name, _, _ in pages:
            runs = results[name]
            print(f"{name:<24} {statistics.median(x[0][0] for x in runs):>10.0f} "
                  f"{statistics.median(x[0][1] for x in runs):>8.2f} {statistics.median(x[0][2] for x in runs):>8.2f} "
                  f"{statistics.median(x[1] for x in runs):>7.3f}")

        # 5. The audit trail against what wrk received.
        if any(p[1] == SALARY for p in pages):
            rows = audit_rows(app.db) - rows_before
            slack = rows - salary_received
            verdict = "ok" if 0 <= slack <= CONNECTIONS * ROUNDS else "MISMATCH"
            print(f"\naudit: {rows} salary_viewed rows for {salary_received} salary pages received "
                  f"({slack} in flight when wrk stopped; at most {CONNECTIONS * ROUNDS}): {verdict}")
        # 6. Memory.
        print(f"peak RSS of fabrikam demo during the load rounds: {app.peak_rss_mb():.1f} MB "
              f"(over its whole life, alice's sign-in included: {max(lifetime_peak_mb, app.peak_rss_mb()):.1f} MB)")
    finally:
        if bare:
            bare.terminate()
        app.stop()


def audit_rows(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM audit_log WHERE event = 'salary_viewed'").fetchone()[0]


if __name__ == "__main__":
    main()
