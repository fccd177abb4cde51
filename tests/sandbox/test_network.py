"""Network attacks: connecting out (the internet and this very test process), listening, UDP, DNS,
and reaching host UNIX sockets (by path and in the abstract namespace)."""

from __future__ import annotations

import select
import socket
import uuid

import pytest

from tests.sandbox.conftest import need_any, run, same_worker, val

NET_LAYERS = ("net-ns", "seccomp", "landlock")


@pytest.fixture()
def listener():
    """A real TCP server in the test process on 127.0.0.1; the job must never reach it."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.setblocking(False)
    yield srv
    srv.close()


def _no_connection(srv: socket.socket, wait_s: float = 0.2) -> bool:
    ready, _, _ = select.select([srv], [], [], wait_s)
    return not ready


def _attempt(body: str) -> str:
    """Wrap an attack so the job reports how it failed instead of raising."""
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    return f"import socket\ntry:\n{indented}\n    x = 'connected'\nexcept OSError as exc:\n    x = type(exc).__name__\n"


def test_tcp_to_the_internet_fails(sb):
    need_any(sb, *NET_LAYERS)
    with same_worker(sb):
        got = val(run(sb, _attempt("s = socket.create_connection(('1.1.1.1', 80), timeout=1)")))
    assert got != "connected"


def test_tcp_to_the_test_process_on_loopback_never_arrives(sb, listener):
    need_any(sb, *NET_LAYERS)
    port = listener.getsockname()[1]
    prog = _attempt(f"""
s = socket.create_connection(('127.0.0.1', {port}), timeout=1)
s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')
""")
    with same_worker(sb):
        got = val(run(sb, prog))
    assert got != "connected"
    assert _no_connection(listener)


def test_tcp_to_the_test_process_by_ipv6_and_hostname_fails(sb, listener):
    need_any(sb, *NET_LAYERS)
    port = listener.getsockname()[1]
    for target in (f"('::1', {port})", f"('localhost', {port})", f"('0.0.0.0', {port})"):
        got = val(run(sb, _attempt(f"s = socket.create_connection({target}, timeout=1)")))
        assert got != "connected", target
    assert _no_connection(listener)


def test_raw_libc_socket_and_connect_fail(sb, listener):
    """The same attempt through ctypes, bypassing Python's socket module."""
    need_any(sb, *NET_LAYERS)
    port = listener.getsockname()[1]
    prog = f"""
import ctypes, socket, struct
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
addr = struct.pack('!HH4s8x', socket.AF_INET, {port}, socket.inet_aton('127.0.0.1'))
addr = struct.pack('=H', socket.AF_INET) + addr[2:]
rc = libc.connect(fd, addr, len(addr)) if fd >= 0 else -1
x = (fd, rc)
"""
    with same_worker(sb):
        fd, rc = val(run(sb, prog))
    assert fd < 0 or rc < 0
    assert _no_connection(listener)


@pytest.mark.parametrize(
    "body",
    [
        "s = socket.socket(); s.bind(('0.0.0.0', 0)); s.listen(1)",
        "s = socket.socket(); s.bind(('127.0.0.1', 8765)); s.listen(1)",
        "s = socket.socket(socket.AF_INET6); s.bind(('::', 0)); s.listen(1)",
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 5353))",
    ],
)
def test_listening_fails(sb, body):
    need_any(sb, *NET_LAYERS)
    with same_worker(sb):
        assert val(run(sb, _attempt(body))) != "connected"


def test_udp_send_fails_or_goes_nowhere(sb):
    need_any(sb, *NET_LAYERS)
    recv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    recv.bind(("127.0.0.1", 0))
    port = recv.getsockname()[1]
    try:
        body = f"""
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b'exfil', ('1.1.1.1', 53))
s.sendto(b'exfil', ('127.0.0.1', {port}))
s.sendto(b'exfil', ('255.255.255.255', {port}))
"""
        with same_worker(sb):
            run(sb, _attempt(body))
        ready, _, _ = select.select([recv], [], [], 0.2)
        assert not ready, "a UDP datagram from the job reached the test process"
    finally:
        recv.close()


@pytest.mark.parametrize(
    "expr", ["socket.getaddrinfo('example.com', 80)", "socket.gethostbyname('pypi.org')",
             "socket.getaddrinfo('1.1.1.1', 53, type=socket.SOCK_DGRAM) and "
             "socket.create_connection(('1.1.1.1', 53), timeout=1)"],
)
def test_dns_resolution_fails(sb, expr):
    need_any(sb, *NET_LAYERS)
    res = run(sb, f"import socket\nx = {expr}")
    assert res.status == "error", res.values
    assert res.error.split(":")[0] in ("gaierror", "PermissionError", "OSError", "herror")


@pytest.mark.parametrize(
    "family", ["socket.AF_NETLINK, socket.SOCK_RAW, 0", "socket.AF_PACKET, socket.SOCK_RAW, 0",
               "socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP", "socket.AF_VSOCK, socket.SOCK_STREAM, 0"],
)
def test_other_socket_families_are_unavailable(sb, family):
    need_any(sb, "seccomp", "net-ns")
    with same_worker(sb):
        assert val(run(sb, _attempt(f"s = socket.socket({family})"))) != "connected"


def test_host_unix_socket_by_path_is_unreachable(sb, tmp_path):
    need_any(sb, "mount-ns", "landlock")
    path = str(tmp_path / "host.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.setblocking(False)
    try:
        with same_worker(sb):
            got = val(run(sb, _attempt(f"s = socket.socket(socket.AF_UNIX); s.connect({path!r})")))
        assert got != "connected"
        assert _no_connection(srv)
    finally:
        srv.close()


def test_host_abstract_unix_socket_is_unreachable(sb):
    need_any(sb, "net-ns", "landlock")
    name = "\0azr-test-" + uuid.uuid4().hex
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(name)
    srv.listen(1)
    srv.setblocking(False)
    try:
        with same_worker(sb):
            got = val(run(sb, _attempt(f"s = socket.socket(socket.AF_UNIX); s.connect({name!r})")))
        assert got != "connected"
        assert _no_connection(srv)
    finally:
        srv.close()


def test_network_interfaces_are_down(sb):
    need_any(sb, "net-ns")
    res = run(sb, "import socket\nx = sorted(name for _, name in socket.if_nameindex())")
    if res.status == "error":  # the netlink socket it needs is denied: nothing to see at all
        assert res.error.startswith(("PermissionError", "OSError")), res.error
    else:
        assert set(val(res)) <= {"lo"}, res.values
