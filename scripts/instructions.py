#!/usr/bin/env python3
"""Instructions per request, counted by valgrind's callgrind: a measure the machine's load does
not move (run by `scripts/load.sh --release --instructions`, which builds the binaries).

wrk's requests per second on a shared 2-core machine move by ±20 % between runs; a change worth
5 % cannot be seen that way. This counts the user-space instructions (Ir) the server executes
for N requests of each page, over one keep-alive connection, after N/10 warm-up requests:
the same figure on every run of the same binary. The bare actix-web baseline (examples/bare.rs,
a page as large as the salary page) is counted the same way, and each page is printed with its
ratio to it (bare Ir / page Ir: 1.0 would be the baseline's cost).

What it leaves out: the kernel's network work and the client (both the same for every page),
waiting (the salary page's fsync), and contention between concurrent requests; so its ratios
are lower than wrk's, and wrk (scripts/load.py) stays the measure of throughput and latency.
Requests are sequential, so each salary view is an audit batch of one row. The count is of
the whole `fabrikam demo` process, so it includes the little background work that runs by
the clock (the ended-logins sync every 2 s, the argon2 pool's idle check every 5 s).

Environment: FABRIKAM_BIN, BARE_BIN, N (requests per page, default 300), PAGES (as load.py).
Needs valgrind (`apt-get install -y valgrind`). Only 127.0.0.1 is contacted; every server it
starts is stopped when it ends.
"""

import glob
import http.client
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402  (the pages, the sign-in and the server start are load.py's)

N = int(os.environ.get("N", "300"))


def under_callgrind(binary, work, name):
    """A script that runs `binary` under callgrind, writing its counts into `work`."""
    wrapper = os.path.join(work, f"{name}.sh")
    with open(wrapper, "w") as f:
        f.write(
            "#!/bin/sh\nexec valgrind --tool=callgrind --collect-systime=no "
            f'--callgrind-out-file={work}/{name}.%p.out "{binary}" "$@"\n'
        )
    os.chmod(wrapper, 0o755)
    return wrapper


def requests(port, path, cookie, count):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Cookie": f"fabrikam_session={cookie}"} if cookie else {}
    for _ in range(count):
        conn.request("GET", path, headers=headers)
        res = conn.getresponse()
        res.read()
        if res.status != 200:
            raise SystemExit(f"{path} answered {res.status}, not 200")
        if res.getheader("Set-Cookie"):
            raise SystemExit(f"{path} rewrote the session mid-count: the figure would include that")
    conn.close()


def instructions_per_request(pid, work, name, port, path, cookie):
    """Ir per request of N requests, between callgrind_control --zero and --dump."""
    requests(port, path, cookie, max(N // 10, 1))
    for f in glob.glob(f"{work}/{name}.*.out*"):
        os.remove(f)
    subprocess.run(["callgrind_control", "--zero", str(pid)], capture_output=True, check=True)
    requests(port, path, cookie, N)
    for f in glob.glob(f"{work}/{name}.*.out*"):
        os.remove(f)
    subprocess.run(["callgrind_control", "--dump", str(pid)], capture_output=True, check=True)
    total = 0
    deadline = time.time() + 30
    while time.time() < deadline:
        dumps = glob.glob(f"{work}/{name}.*.out.*")
        totals = [t for t in map(summary, dumps) if t is not None]
        if dumps and len(totals) == len(dumps):
            total = sum(totals)
            break
        time.sleep(0.2)
    else:
        raise SystemExit("callgrind wrote no dump")
    return total / N


def summary(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    return None


def main():
    fabrikam_bin, bare_bin = os.environ["FABRIKAM_BIN"], os.environ["BARE_BIN"]
    wanted = os.environ.get("PAGES")
    pages = [p for p in load.PAGES if not wanted or p[0] in wanted.split("|")]
    work = tempfile.mkdtemp(prefix="fabrikam-instructions-")
    print(f"binary {fabrikam_bin}; {N} requests per page under callgrind, one connection")
    app = load.Fabrikam(under_callgrind(fabrikam_bin, work, "fabrikam"), work)
    bare = None
    try:
        session = load.sign_in_alice(app.site)
        _, salary_bytes = load.status_and_size(app.site + load.SALARY, session)
        bare_port = load.free_port()
        bare = subprocess.Popen(
            [under_callgrind(bare_bin, work, "bare")],
            env={**os.environ, "BARE_ADDR": f"127.0.0.1:{bare_port}", "BARE_BYTES": str(salary_bytes)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(3000):
            try:
                if load.status_and_size(f"http://127.0.0.1:{bare_port}/")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.01)
        else:
            raise SystemExit("the bare baseline did not start")
        base = instructions_per_request(bare.pid, work, "bare", bare_port, "/", None)
        print(f"\n{'page':<24} {'Ir/request':>11} {'ratio':>7}")
        print(f"{'bare baseline':<24} {base:>11,.0f} {1:>7.3f}   ({salary_bytes} B page)")
        for name, path, signed_in in pages:
            if signed_in:
                session = load.fresh_session(app.site, session)
            ir = instructions_per_request(
                app.proc.pid, work, "fabrikam", app.site_port, path, session if signed_in else None
            )
            print(f"{name:<24} {ir:>11,.0f} {base / ir:>7.3f}", flush=True)
    finally:
        if bare:
            bare.terminate()
            bare.wait()
        app.stop()


if __name__ == "__main__":
    main()
