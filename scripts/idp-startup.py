#!/usr/bin/env python3
"""How long `fabrikam idp` takes from spawn to its first discovery answer and to its first
JWKS (which waits for the RSA key generated in the background), with the RSA key generated
and with it loaded from IDP_RSA_SIGNING_KEY, interleaved in one run on a shared machine.

    scripts/idp-startup.py [--runs 20] [--binary target/debug/fabrikam]

Builds nothing: run `cargo build` (or `--release`) first. The PEM for the baseline comes from
the `openssl` command line, if installed (only for this script; the crate has no OpenSSL).
Prints medians and the ratio of each figure to the baseline's discovery time.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def once(binary, extra_env):
    port = free_port()
    env = dict(os.environ, IDP_ADDR=f"127.0.0.1:{port}", RUST_LOG="warn", **extra_env)
    for name in ("IDP_ISSUER_URL", "IDP_CONFIG", "IDP_SIGNING_KEY"):
        env.pop(name, None)
    if "IDP_RSA_SIGNING_KEY" not in extra_env:
        env.pop("IDP_RSA_SIGNING_KEY", None)
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    process = subprocess.Popen([binary, "idp"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = started + 30
        while True:
            try:
                urllib.request.urlopen(base + "/.well-known/openid-configuration", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    sys.exit("fabrikam idp did not start")
                time.sleep(0.002)
        discovery = time.monotonic()
        urllib.request.urlopen(base + "/jwks", timeout=30).read()
        jwks = time.monotonic()
    finally:
        process.terminate()
        process.wait()
    return (discovery - started) * 1000, (jwks - started) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--binary", default="target/debug/fabrikam")
    args = parser.parse_args()
    variants = {"RSA key generated": {}}
    tmp = tempfile.mkdtemp(prefix="fabrikam-startup-")
    try:
        if shutil.which("openssl"):
            pem = os.path.join(tmp, "rsa.pem")
            subprocess.run(
                ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pem],
                check=True, capture_output=True,
            )
            variants = {"RSA key from PEM (baseline)": {"IDP_RSA_SIGNING_KEY": pem}, **variants}
        results = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, env in variants.items():
                results[name].append(once(args.binary, env))
        baseline = statistics.median(r[0] for r in next(iter(results.values())))
        print(f"{args.runs} runs each, {args.binary}; ratios to the first line's discovery median")
        for name, runs in results.items():
            discovery = statistics.median(r[0] for r in runs)
            jwks = statistics.median(r[1] for r in runs)
            print(
                f"  {name:28} first discovery {discovery:5.0f} ms ({discovery / baseline:.2f}), "
                f"first JWKS {jwks:5.0f} ms ({jwks / baseline:.2f})"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
