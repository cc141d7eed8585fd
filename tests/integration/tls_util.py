"""A test PKI made with the openssl command line (ECDSA P-256), and TLS clients.

  pki = Pki(t.tmpdir)                    # a CA in t.tmpdir/pki-ca/
  cert, key = pki.issue("server")        # localhost and 127.0.0.1 by default
  t.sessiond(overrides=tls_overrides(cert, key))

Files are written under the test's temp dir and removed with it. The
helpers here only drive real clients (openssl s_client, curl, Python's ssl);
they never look inside sessiond.
"""

import os
import socket
import ssl
import subprocess

from client import RawConnection


def _run(args, cwd=None, input=None):
    p = subprocess.run(args, cwd=cwd, input=input, capture_output=True, timeout=30)
    if p.returncode != 0:
        raise AssertionError("%s failed: %s" % (" ".join(args), p.stderr.decode(errors="replace")[-2000:]))
    return p


class Pki:
    """A CA and the certificates it issues, as PEM files."""

    def __init__(self, workdir, name="ca"):
        self.dir = os.path.join(workdir, "pki-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.ca_cert = os.path.join(self.dir, "ca.pem")
        self.ca_key = os.path.join(self.dir, "ca.key")
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "2", "-subj", "/CN=sessiond test %s" % name,
              "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

    def issue(self, cn, dns=("localhost",), ips=("127.0.0.1",), days=1):
        """(cert path, key path) of a leaf for server and client use."""
        base = os.path.join(self.dir, cn)
        _run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=%s" % cn])
        san = ",".join(["DNS:%s" % d for d in dns] + ["IP:%s" % i for i in ips])
        ext = base + ".ext"
        with open(ext, "w") as f:
            if san:
                f.write("subjectAltName=%s\n" % san)
            f.write("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n")
        _run(["openssl", "x509", "-req", "-in", base + ".csr", "-CA", self.ca_cert, "-CAkey", self.ca_key,
              "-CAcreateserial", "-days", str(days), "-out", base + ".pem", "-extfile", ext])
        return base + ".pem", base + ".key"


def self_signed(workdir, cn, dns=("localhost",), ips=("127.0.0.1",)):
    """(cert path, key path) of a self-signed leaf (no CA)."""
    base = os.path.join(workdir, "self-" + cn)
    san = ",".join(["DNS:%s" % d for d in dns] + ["IP:%s" % i for i in ips])
    _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-keyout", base + ".key", "-out", base + ".pem", "-days", "1", "-subj", "/CN=%s" % cn,
          "-addext", "subjectAltName=%s" % san])
    return base + ".pem", base + ".key"


def tls_overrides(cert, key, **extra):
    """Config overrides for a TLS listener."""
    section = {"certificate": cert, "private_key": key}
    section.update(extra)
    return {"tls": section}


def s_client(port, *args, stdin=b"", timeout=15):
    """Runs openssl s_client against 127.0.0.1:port; (exit status, stdout + stderr text).

    stdin is sent after the handshake; s_client then waits a moment for what
    the server sends (session tickets, a response) before it quits."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost"] + list(args)
    # -ign_eof keeps s_client reading after stdin ends, until the server closes
    # or the sleep in the shell pipeline ends; a short sleep lets TLS 1.3
    # tickets arrive before it quits.
    script = "{ printf '%%s' \"$REQ\"; sleep 0.5; } | %s" % " ".join("'%s'" % c for c in cmd)
    p = subprocess.run(["bash", "-c", script], capture_output=True, timeout=timeout,
                       env=dict(os.environ, REQ=stdin.decode("latin-1")))
    return p.returncode, (p.stdout + p.stderr).decode("latin-1")


def client_context(ca=None, cert=None, key=None, min_version=None, max_version=None):
    ctx = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    if cert:
        ctx.load_cert_chain(cert, key)
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def tls_connect(port, ctx, server_hostname="localhost", timeout=10.0, session=None):
    """A TLS socket to 127.0.0.1:port after a completed handshake."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname=server_hostname, session=session)


def read_response(sock, limit=1 << 24):
    """One HTTP/1.1 response with a Content-Length body from sock: (status, headers dict lower-case, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed before a response head (got %r)" % buf[:200])
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(min(1 << 20, limit))
        if not chunk:
            raise AssertionError("connection closed in the body")
        rest += chunk
    return status, headers, rest[:n]


def client_hello(server_hostname="localhost"):
    """The bytes of a real TLS ClientHello (from Python's ssl), never sent."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def peer_common_name(port, ca):
    """The CN of the certificate the server at port presents now."""
    s = tls_connect(port, client_context(ca=ca))
    try:
        subject = dict(x[0] for x in s.getpeercert()["subject"])
        return subject.get("commonName")
    finally:
        s.close()


class TlsConnection(RawConnection):
    """client.RawConnection (its strict response reader) over TLS."""

    def __init__(self, port, ctx, server_hostname="localhost", timeout=10.0, session=None):
        super().__init__(port, timeout=timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname, session=session)
