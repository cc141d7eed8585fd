#!/usr/bin/env python3
"""Small network helpers for scripts/bench.sh (standard library only).

  net.py free-ports N                 print N distinct free TCP ports on 127.0.0.1
  net.py wait-listen PORT SECS [PID]  wait until something listens on 127.0.0.1:PORT;
                                      exit 1 on timeout or when PID has exited
  net.py get-cookie PORT PATH NAME    one GET through PORT; print NAME=VALUE from its Set-Cookie
  net.py expect-body PORT PATH COOKIE TEXT
                                      one GET with COOKIE; exit 1 unless it is a 200 whose
                                      body is TEXT and that sets no cookie
  net.py requests PORT PATH N [COOKIE]
                                      N sequential GETs over ONE keep-alive connection;
                                      prints "ok=N other=M" and exits 1 unless all were 2xx

wait-listen reads /proc/net/tcp instead of connecting, so a server started under
callgrind sees no connection before the measured requests: a run with zero
requests then costs exactly startup + shutdown, which bench.sh subtracts.
"""

import os
import socket
import sys
import time


def free_ports(n):
    # Bind them all at once so the N ports are distinct; the kernel does not
    # hand out a port again right after it was released, which keeps the
    # window between here and the server's bind() harmless in practice.
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def listening(port):
    want = ":%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                # local_address is "0100007F:1F90"; state 0A is LISTEN.
                if fields[1].endswith(want) and fields[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def alive(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except OSError:
        return False
    return True


def wait_listen(port, seconds, pid=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if listening(port):
            return True
        if pid is not None and not alive(pid):
            return False
        time.sleep(0.02)
    return False


class Connection:
    """One keep-alive HTTP/1.1 client connection; responses need Content-Length."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def get(self, path, cookie=None):
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1", "User-Agent: sessiond-bench"]
        if cookie:
            lines.append("Cookie: " + cookie)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        head_lines = head.decode("latin-1").split("\r\n")
        status = int(head_lines[0].split()[1])
        headers = []
        length = None
        for line in head_lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
            if name.strip().lower() == "content-length":
                length = int(value)
            if name.strip().lower() == "transfer-encoding":
                raise RuntimeError("chunked response: the benchmark backend sends Content-Length")
        if length is None:
            raise RuntimeError("response without Content-Length (status %d)" % status)
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("connection closed by the server")
        self.buf += data

    def close(self):
        self.sock.close()


def get_cookie(port, path, name):
    conn = Connection(port)
    status, headers, _ = conn.get(path)
    conn.close()
    if status != 200:
        raise RuntimeError("GET %s answered %d" % (path, status))
    for key, value in headers:
        if key == "set-cookie" and value.startswith(name + "="):
            return value.split(";", 1)[0]
    raise RuntimeError("GET %s set no %s cookie" % (path, name))


def expect_body(port, path, cookie, text):
    conn = Connection(port)
    status, headers, body = conn.get(path, cookie)
    conn.close()
    if status != 200:
        raise RuntimeError("GET %s answered %d" % (path, status))
    if body.decode("latin-1") != text:
        raise RuntimeError("GET %s: body %r, expected %r" % (path, body[:80], text))
    if any(key == "set-cookie" for key, _ in headers):
        raise RuntimeError("GET %s set or cleared a cookie" % path)


def run_requests(port, path, n, cookie):
    conn = Connection(port)
    ok = other = 0
    for _ in range(n):
        status, _, _ = conn.get(path, cookie)
        if 200 <= status < 300:
            ok += 1
        else:
            other += 1
    conn.close()
    return ok, other


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    try:
        if cmd == "free-ports" and len(args) == 1:
            print(" ".join(str(p) for p in free_ports(int(args[0]))))
        elif cmd == "wait-listen" and len(args) in (2, 3):
            pid = int(args[2]) if len(args) == 3 else None
            sys.exit(0 if wait_listen(int(args[0]), float(args[1]), pid) else 1)
        elif cmd == "get-cookie" and len(args) == 3:
            print(get_cookie(int(args[0]), args[1], args[2]))
        elif cmd == "expect-body" and len(args) == 4:
            expect_body(int(args[0]), args[1], args[2], args[3])
        elif cmd == "requests" and len(args) in (3, 4):
            ok, other = run_requests(int(args[0]), args[1], int(args[2]),
                                     args[3] if len(args) == 4 else None)
            print("ok=%d other=%d" % (ok, other))
            sys.exit(0 if other == 0 else 1)
        else:
            sys.exit(__doc__)
    except (OSError, RuntimeError, ValueError) as e:
        sys.exit("net.py %s: %s" % (cmd, e))


if __name__ == "__main__":
    main(sys.argv)
