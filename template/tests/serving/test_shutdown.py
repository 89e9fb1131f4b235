"""SIGTERM lets an in-flight request finish before the process exits."""

from __future__ import annotations

import json
import signal
import socket
import time

from .conftest import RunningServer
from .test_app import RECORD


def test_sigterm_finishes_the_request_in_flight(doomed_server: RunningServer) -> None:
    server = doomed_server
    body = json.dumps(RECORD).encode()
    head = (
        f"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body[:10])  # the request is now in flight
        time.sleep(1.0)  # let the server read the head, even on a busy machine
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert server.process.poll() is None, "exited with a request in flight"
        sock.sendall(body[10:])
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    # uvicorn re-raises the SIGTERM once it has shut down cleanly.
    assert server.process.wait(10) in (0, -signal.SIGTERM)
