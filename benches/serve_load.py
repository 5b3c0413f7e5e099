#!/usr/bin/env python3
"""Load on `ferry serve` over loopback: N clients list and download for D seconds while a
run exports, then one tar part downloaded through the API and through Debian's nginx
(same client, same file). Prints errors, p50/p99 latency of list and of time to first
byte, the server's peak RSS, and MB/s of both downloads.

    python3 benches/serve_load.py [--ferry target/release/ferry] [--scale 10] [--clients 50] [--seconds 20]

nginx is installed with apt-get when missing. Standard library only.
"""
import argparse, http.client, json, os, shutil, signal, subprocess, sys, tempfile, threading, time

def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")

def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0

def request(host, port, method, path, token, body=None, headers=None, read=True):
    c = http.client.HTTPConnection(host, port, timeout=60)
    h = {"Authorization": f"Bearer {token}"} if token else {}
    h.update(headers or {})
    if body is not None:
        h["Content-Type"] = "application/json"
    started = time.perf_counter()
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    ttfb = time.perf_counter() - started
    n = 0
    if read:
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            n += len(chunk)
    c.close()
    return r.status, ttfb, n, time.perf_counter() - started

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", default="target/release/ferry")
    ap.add_argument("--scale", type=float, default=10)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--downloads", type=int, default=5, help="whole-part downloads through each server, alternated")
    ap.add_argument("--platform", help="a platform `ferry demo` generated before (reused instead of generating one)")
    a = ap.parse_args()
    ferry = os.path.abspath(a.ferry)
    if not os.path.exists(ferry):
        subprocess.run(["cargo", "build", "--release"], check=True)
    work = tempfile.mkdtemp(prefix="ferry-serve-bench-")
    env = dict(os.environ)
    if a.platform:
        os.symlink(os.path.abspath(a.platform), f"{work}/platform")
    else:
        subprocess.run([ferry, "demo", "--out", f"{work}/platform", "--scale", str(a.scale)], check=True, stdout=subprocess.DEVNULL)
    res = '[[resource]]\nname = "users"\n[[resource]]\nname = "accounts"\n[[resource]]\nname = "transactions"\n'
    open(f"{work}/job.toml", "w").write(
        f'[snapshot]\nname = "bench"\nas_of = "2026-03-31T14:30:22Z"\n[source]\nsqlite = "platform/platform.db"\n[output]\ndir = "out"\npart_size = "4GiB"\n{res}')
    open(f"{work}/service.toml", "w").write('output_dir = "srv"\nmax_concurrent_runs = 1\n[[job]]\nname = "bench"\nfile = "job.toml"\n')
    token = subprocess.run([ferry, "tokens", "create", "--config", f"{work}/service.toml", "--name", "bench"],
                           check=True, capture_output=True, text=True).stdout.strip()
    server = subprocess.Popen([ferry, "serve", "--config", f"{work}/service.toml", "--listen", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    url = next(w for w in server.stdout.readline().split() if w.startswith("http"))
    host, port = url.split("//")[1].split(":")
    port = int(port)
    peak = [0]
    stop = threading.Event()
    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(server.pid))
            time.sleep(0.05)
    threading.Thread(target=watch, daemon=True).start()
    try:
        # A completed snapshot to download, then a second run exporting during the load.
        _, _, _, _ = request(host, port, "POST", "/api/v1/snapshots", token, {"job": "bench"}, read=True)
        def latest():
            c = http.client.HTTPConnection(host, port); c.request("GET", "/api/v1/snapshots?per_page=1", headers={"Authorization": f"Bearer {token}"})
            return json.loads(c.getresponse().read())["snapshots"][0]
        while latest()["status"] not in ("completed", "failed"):
            time.sleep(0.5)
        done = latest()
        assert done["status"] == "completed", done
        c = http.client.HTTPConnection(host, port); c.request("GET", done["files_url"], headers={"Authorization": f"Bearer {token}"})
        files = json.loads(c.getresponse().read())["files"]
        part = max((f for f in files if f["kind"] == "part"), key=lambda f: f["bytes"])
        request(host, port, "POST", "/api/v1/snapshots", token, {"job": "bench"})
        lists, ttfbs, errors, served = [], [], [0], [0]
        deadline = time.time() + a.seconds
        def client(i):
            while time.time() < deadline:
                try:
                    if i % 2 == 0:
                        s, t, _, total = request(host, port, "GET", "/api/v1/snapshots?per_page=20", token)
                        lists.append(total)
                    else:
                        s, t, n, _ = request(host, port, "GET", part["url"], token, headers={"Range": "bytes=0-1048575"})
                        ttfbs.append(t); served[0] += n
                    if s >= 400:
                        errors[0] += 1
                except Exception:
                    errors[0] += 1
        threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
        for t in threads: t.start()
        for t in threads: t.join()
        # One whole part through the API and through nginx, same client, alternated
        # `--downloads` times each (one download of each is at the mercy of the machine).
        path = os.path.join(work, "srv", done["snapshot_id"], part["name"])
        if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
            subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], check=False, stdout=subprocess.DEVNULL)
        nginx = "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else shutil.which("nginx")
        import socket
        probe = socket.socket(); probe.bind((host, 0)); ng_port = probe.getsockname()[1]; probe.close()
        conf = f"{work}/nginx.conf"
        # Workers run as the caller, so they read the same private temporary directory.
        open(conf, "w").write(f"daemon off; user {os.getenv('USER') or 'root'}; pid {work}/nginx.pid; error_log {work}/nginx.err; events {{}}\n"
                              f"http {{ access_log off; sendfile on; server {{ listen 127.0.0.1:{ng_port}; root {os.path.dirname(path)}; }} }}\n")
        ng = subprocess.Popen([nginx, "-c", conf], stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection((host, ng_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        api, web = [], []
        for _ in range(a.downloads):
            st, _, n, api_s = request(host, port, "GET", part["url"], token)
            assert st == 200 and n == part["bytes"], f"the API answered {st} with {n} bytes"
            api.append(n / 1e6 / api_s)
            st, _, m, ng_s = request(host, ng_port, "GET", "/" + part["name"], None)
            assert st == 200 and m == part["bytes"], f"nginx answered {st} with {m} bytes"
            web.append(m / 1e6 / ng_s)
        ng.send_signal(signal.SIGQUIT); ng.wait()
        api_mbs, nginx_mbs = percentile(api, .5), percentile(web, .5)
        ratios = sorted(x / y for x, y in zip(api, web))
        print(f"clients {a.clients}, {a.seconds:.0f} s, loopback, while a run exports (scale {a.scale})")
        print(f"errors {errors[0]}; list requests {len(lists)}: p50 {percentile(lists, .5)*1e3:.1f} ms, p99 {percentile(lists, .99)*1e3:.1f} ms")
        print(f"range downloads {len(ttfbs)} (1 MiB each): time to first byte p50 {percentile(ttfbs, .5)*1e3:.1f} ms, p99 {percentile(ttfbs, .99)*1e3:.1f} ms")
        print(f"server peak RSS {peak[0] / 1024:.1f} MiB")
        print(f"one part of {part['bytes'] / 1e6:.1f} MB, {a.downloads} downloads each, alternated: API median {api_mbs:.0f} MB/s "
              f"({min(api):.0f}-{max(api):.0f}), nginx median {nginx_mbs:.0f} MB/s ({min(web):.0f}-{max(web):.0f}); "
              f"ratio per pair median {percentile(ratios, .5):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})")
    finally:
        stop.set()
        server.kill()
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
