"""srvlib - helpers for the server tests: a tiny model, a `collage serve` process on a
free loopback port, plain HTTP requests (http.client: no third-party package), Server-Sent
Event streams and the Prometheus metrics. Environment (from ctest): COLLAGE_BIN,
COLLAGE_TMP; COLLAGE_SANITIZED=1 under ASan (tests use smaller counts there)."""
import atexit
import http.client
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

BIN = os.environ.get("COLLAGE_BIN", "collage")
TMP = os.environ.get("COLLAGE_TMP", "/tmp")
SANITIZED = os.environ.get("COLLAGE_SANITIZED") == "1"


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def scratch(name):
    d = os.path.join(TMP, "%s.%d" % (name, os.getpid()))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def make_model(path, preset="tiny-gka"):
    subprocess.run([BIN, "mkmodel", "--preset", preset, "--out", path], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return path


_running = []


@atexit.register
def _kill_leftovers():
    """A test that failed (or raised) leaves no server behind."""
    for p in _running:
        if p.poll() is None:
            p.kill()
            p.wait()


class Server:
    """`collage serve` on 127.0.0.1 and a free port; stop() sends SIGTERM and expects a
    clean exit (0)."""

    def __init__(self, model, store=None, args=(), log=None, start_timeout=120):
        cmd = [BIN, "serve", "--model", model, "--port", "0"]
        cmd += ["--store", store] if store else ["--no-store"]
        if "--threads" not in args:  # one CPU thread: steadier on a loaded machine
            cmd += ["--threads", "1"]
        cmd += list(args)
        self.log = log or os.path.join(TMP, "serve.%d.log" % os.getpid())
        self.logf = open(self.log, "w")
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.logf, text=True)
        _running.append(self.p)
        deadline = time.time() + start_timeout
        line = ""
        while time.time() < deadline and self.p.poll() is None:
            r, _, _ = select.select([self.p.stdout], [], [], 0.5)
            if r:
                line = self.p.stdout.readline()
                break
        if "listening on" not in line:
            self.p.kill()
            self.p.wait()
            fail("server did not start: %r (log %s: %s)" % (line, self.log, self.tail()))
        if "--host" not in args:
            check("http://127.0.0.1:" in line, "not bound to 127.0.0.1 by default: " + line)
        self.port = int(line.split("://")[1].split(" ")[0].rsplit(":", 1)[1])
        self.signalled = False

    def tail(self):
        if not self.logf.closed:
            self.logf.flush()
        try:
            with open(self.log) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def conn(self, timeout=120):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=120):
        """(status, headers dict (lower-case keys), body bytes)."""
        c = self.conn(timeout)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        hd = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, hd, data

    def json(self, method, path, body=None, headers=None, expect=200):
        status, _, data = self.request(method, path, body, headers)
        check(status == expect, "%s %s: expected %d, got %d: %s" % (method, path, expect, status,
                                                                    data[:500]))
        return json.loads(data)

    def stream(self, path, body, headers=None):
        """The JSON events of a Server-Sent Event answer (checks the [DONE] end)."""
        status, hd, data = self.request("POST", path, body, headers)
        check(status == 200, "stream %s: status %d: %s" % (path, status, data[:500]))
        check(hd.get("content-type", "").startswith("text/event-stream"),
              "stream: content type %r" % hd.get("content-type"))
        events = []
        text = data.decode("utf-8")
        blocks = [b for b in text.split("\n\n") if b.strip()]
        check(blocks and blocks[-1] == "data: [DONE]", "stream does not end with [DONE]: %r"
              % text[-200:])
        for b in blocks[:-1]:
            check(b.startswith("data: "), "not an SSE data line: %r" % b[:100])
            events.append(json.loads(b[6:]))
        return events

    def metrics(self):
        status, _, data = self.request("GET", "/metrics")
        check(status == 200, "/metrics: %d" % status)
        out = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def rss_kib(self):
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self, timeout=120, expect_code=0):
        if self.p.poll() is None and not self.signalled:
            self.p.send_signal(signal.SIGTERM)
        try:
            code = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            fail("server did not exit within %ds of SIGTERM: %s" % (timeout, self.tail()))
        self.p.stdout.close()
        self.logf.close()
        check(code == expect_code, "server exit code %d (expected %d): %s" %
              (code, expect_code, self.tail()))
        return code

    def terminate(self):
        """SIGTERM now (stop() then only waits)."""
        self.signalled = True
        self.p.send_signal(signal.SIGTERM)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.p.stdout.close()
        self.logf.close()


def tokens(srv, text):
    """Token ids of text (special tokens parsed) through /tokenize."""
    return srv.json("POST", "/tokenize", {"prompt": text})["tokens"]


def wait_until(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    fail("timed out waiting for " + what)
