#!/usr/bin/env python3
"""The request driver of scripts/bench.sh's callgrind step (standard library only).

  net.py requests PORT PATH N [COOKIE]
                                      N sequential GETs over ONE keep-alive connection;
                                      prints "ok=N other=M" and exits 1 unless all were 2xx

One connection, one request at a time: the instructions a server executes for
it are the same from run to run, so callgrind's count divided by N is stable.
(The other helpers live in lib.sh, in bash, so the scale runner can use them.)
"""

import socket
import sys


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
        if cmd == "requests" and len(args) in (3, 4):
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
