"""A service that just (re)started, or that meets a freshly rotated key, must not refuse valid tokens while
it fetches the gateway's JWKS: twenty threads verifying at once all wait for the one fetch in flight.
(It used to mark the fetch done before it finished, and 19 of 20 concurrent requests got 401.)"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from shared.auth import TokenVerifier
from shared.devtokens import DevSigner


def slow_jwks_server(jwks: dict[str, object], delay: float) -> tuple[ThreadingHTTPServer, list[float]]:
    fetches: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetches.append(time.monotonic())
            time.sleep(delay)  # a gateway that answers slowly, as right after a restart
            body = json.dumps(jwks).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, fetches


def test_concurrent_verifications_wait_for_the_key_fetch_in_flight() -> None:
    signer = DevSigner.generate()
    server, fetches = slow_jwks_server(signer.jwks(), delay=0.3)
    try:
        verifier = TokenVerifier({"keys": []}, f"http://127.0.0.1:{server.server_port}/jwks")
        tokens = [signer.mint("village_doctor", subject=f"user:{n}") for n in range(20)]
        with ThreadPoolExecutor(20) as pool:
            principals = list(pool.map(verifier.verify, tokens))
        assert [p.subject for p in principals] == [f"user:{n}" for n in range(20)]
        assert len(fetches) == 1  # one fetch served them all
    finally:
        server.shutdown()


def test_an_unknown_key_is_not_fetched_for_again_within_a_second() -> None:
    signer, stranger = DevSigner.generate(), DevSigner.generate()
    server, fetches = slow_jwks_server(signer.jwks(), delay=0.0)
    try:
        verifier = TokenVerifier({"keys": []}, f"http://127.0.0.1:{server.server_port}/jwks")
        refused = 0
        for _ in range(10):
            try:
                verifier.verify(stranger.mint("resident"))
            except Exception:
                refused += 1
        assert refused == 10 and len(fetches) == 1  # a flood of forged kids cannot hammer the gateway
    finally:
        server.shutdown()
