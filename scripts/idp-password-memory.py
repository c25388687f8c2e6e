#!/usr/bin/env python3
"""How much memory `fabrikam idp` keeps after a burst of wrong passwords: starts the binary on
127.0.0.1, posts N wrong passwords through the real sign-in form (each to a different user
name, so the per-name throttle lets every one reach argon2), C at a time, and prints the
process's VmRSS and VmHWM (from /proc/<pid>/status) before, right after, and after a second's
rest. Bounded: N posts, then the process is stopped.

    scripts/idp-password-memory.py [--binary target/debug/fabrikam] [--posts 200] [--concurrency 20]

Builds nothing: run `cargo build` (or `--release`) first. Linux only (reads /proc).
"""
import argparse
import base64
import concurrent.futures
import hashlib
import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def memory(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) // 1024
    return fields


def wrong_password(base, i):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    verifier = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
    query = urllib.parse.urlencode({
        "response_type": "code",
        "client_id": "fabrikam-intranet",
        "redirect_uri": "http://127.0.0.1:8080/callback",
        "scope": "openid",
        "state": f"s{i}",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    })
    page = opener.open(f"{base}/authorize?{query}", timeout=60).read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({
        "csrf_token": csrf, "username": f"sprayed-{i}", "password": "not-the-password",
    }).encode()
    answer = opener.open(f"{base}/login", data=form, timeout=120).read().decode()
    if "do not match" not in answer:
        sys.exit(f"post {i}: unexpected answer")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/debug/fabrikam")
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    port = free_port()
    env = dict(os.environ, IDP_ADDR=f"127.0.0.1:{port}", RUST_LOG="warn")
    for name in ("IDP_ISSUER_URL", "IDP_CONFIG", "FABRIKAM_PUBLIC_URL", "FABRIKAM_ADDR"):
        env.pop(name, None)
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([args.binary, "idp"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/jwks", timeout=30).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    sys.exit("fabrikam idp did not start")
                time.sleep(0.05)
        before = memory(process.pid)
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(lambda i: wrong_password(base, i), range(args.posts)))
        took = time.monotonic() - started
        after = memory(process.pid)
        time.sleep(1)
        rested = memory(process.pid)
    finally:
        process.terminate()
        process.wait()
    print(f"{args.binary}: {args.posts} wrong passwords, {args.concurrency} at a time, {took:.1f} s")
    print(f"  before:       VmRSS {before['VmRSS']:5} MiB  VmHWM {before['VmHWM']:5} MiB")
    print(f"  right after:  VmRSS {after['VmRSS']:5} MiB  VmHWM {after['VmHWM']:5} MiB")
    print(f"  1 s later:    VmRSS {rested['VmRSS']:5} MiB  VmHWM {rested['VmHWM']:5} MiB")


if __name__ == "__main__":
    main()
