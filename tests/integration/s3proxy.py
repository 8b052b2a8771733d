"""An HTTP proxy in front of moto's S3 server that refuses the requests a test chooses: an object store failing
part way through a piece of work (one object's write refused after others were written), which a TCP proxy cannot
aim at one object.

proxy = RefusingProxy(moto.endpoint).start()   # S3 clients use proxy.endpoint
proxy.refuse = lambda method, path: method == "PUT" and "/messages/" in path   # answered 503, never forwarded
proxy.refuse = None                            # everything passes again
proxy.stop(); proxy.start()                    # the store gone (connections refused), then back on the same port
proxy.stop()
"""

from __future__ import annotations

import http.client
import http.server
import threading
import urllib.parse
from collections.abc import Callable

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


class RefusingProxy:
    def __init__(self, upstream: str) -> None:
        parts = urllib.parse.urlparse(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.refuse: Callable[[str, str], bool] | None = None
        self.refused: list[str] = []
        self.port = 0
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RefusingProxy:
        """Listens on a free port, or on the same port again after `stop`."""
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops listening: connections are refused, as by a store that is down."""
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
        self._server = self._thread = None

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._forward()

            do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                refuse = proxy.refuse
                if refuse is not None and refuse(self.command, urllib.parse.unquote(self.path)):
                    proxy.refused.append(f"{self.command} {self.path}")
                    self._answer(503, [("Content-Type", "application/xml")], b"<Error><Code>SlowDown</Code></Error>")
                    return
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                    kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
                    self._answer(response.status, kept, data, declared=response.getheader("Content-Length"))
                finally:
                    upstream.close()

            def _answer(
                self, status: int, headers: list[tuple[str, str]], data: bytes, declared: str | None = None
            ) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                # a HEAD answer declares the object's length but carries no body
                self.send_header("Content-Length", declared if self.command == "HEAD" and declared else str(len(data)))
                # one request per connection: once stopped, no kept-alive connection serves a client any more
                self.send_header("Connection", "close")
                self.close_connection = True
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

        return Handler
