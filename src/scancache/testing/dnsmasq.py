"""Dnsmasq: a real dnsmasq on a free 127.0.0.1 port, as a second, independent DNS server for tests.

The loopback server in dns_server.py is ours; dnsmasq is not, so answers it gives (its record
formats, its wildcard `--address=/zone/ip`, its EDNS handling) check the client against a server
written by someone else. It runs in the foreground as a child process with no config file, no
resolv.conf and no hosts file, answers only what the options given declare (names under `local`
zones it does not know are NXDOMAIN) and is killed when the block ends. Nothing under /etc is read
or written, and it is never a system service.

    with Dnsmasq(["--host-record=a.test,192.0.2.1", "--mx-host=a.test,mail.a.test,10"]) as server:
        DNSCache(config, nameservers=[server.address])
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable

__all__ = ["Dnsmasq", "dnsmasq_path"]


def dnsmasq_path() -> str | None:
    """The dnsmasq binary (PATH, then /usr/sbin), or None when it is not installed."""
    return shutil.which("dnsmasq") or next(
        (p for p in ("/usr/sbin/dnsmasq", "/usr/local/sbin/dnsmasq") if os.access(p, os.X_OK)), None)


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now (dnsmasq binds both)."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            tcp.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            udp.close()
            tcp.close()
    raise OSError("no free loopback port for dnsmasq")


class Dnsmasq:
    """dnsmasq serving `options` (dnsmasq command-line records) for the zones in `local`."""

    def __init__(self, options: Iterable[str], *, local: Iterable[str] = ("test",),
                 start_timeout: float = 10.0) -> None:
        binary = dnsmasq_path()
        if binary is None:
            raise FileNotFoundError("dnsmasq is not installed (apt-get install dnsmasq-base)")
        self.binary = binary
        self.options = list(options)
        self.local = list(local)
        self.start_timeout = start_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """"127.0.0.1:port", the form DNSCache(nameservers=[...]) takes."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Dnsmasq:
        """Start dnsmasq and wait until it answers; raises OSError if it does not."""
        last_error = ""
        for _ in range(5):  # the free port may be taken between the check and dnsmasq's bind
            self.port = _free_port()
            args = [self.binary, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                    "--no-hosts", "--no-poll", "--bind-interfaces", "--listen-address=127.0.0.1",
                    f"--port={self.port}", "--pid-file=", "--cache-size=0", "--log-facility=-",
                    "--user=" + _current_user(), *[f"--local=/{zone}/" for zone in self.local],
                    *self.options]
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE)
            if self._wait_ready():
                return self
            last_error = self._stop_and_read_error()
        raise OSError(f"dnsmasq did not start: {last_error}")

    def _wait_ready(self) -> bool:
        """True once dnsmasq answers a query (any answer), False if it exited or timed out."""
        query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ready\x04test\x00\x00\x01\x00\x01"
        deadline = time.monotonic() + self.start_timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.1)
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False
                try:
                    sock.sendto(query, ("127.0.0.1", self.port))
                    if sock.recv(512)[:2] == query[:2]:
                        return True
                except OSError:
                    pass
        return False

    def _stop_and_read_error(self) -> str:
        process, self.process = self.process, None
        if process is None:
            return ""
        if process.poll() is None:
            process.kill()
        try:
            _, err = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            return "no exit after kill"
        return err.decode(errors="replace").strip()[-500:]

    def stop(self) -> None:
        """Stop dnsmasq (idempotent)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process is not None and process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> Dnsmasq:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _current_user() -> str:
    """This process's user name, so dnsmasq running as root does not switch to `nobody`."""
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name
