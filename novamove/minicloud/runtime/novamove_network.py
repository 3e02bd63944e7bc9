"""The minicloud's network endpoint: the few read-only Neutron calls Nova makes.

Nova cannot run without a network service even for servers booted with "networks": "none":
every GET /servers looks up ports for security groups. Over boot, cold and live migration,
confirm and revert Nova only issues GETs (extensions, networks, ports filtered by device id);
empty lists are the correct answer for servers without ports. A real neutron-server would cost
another ~300 MB and a dozen seconds of start-up for no behaviour novamove depends on.

Anything other than those reads answers 501, so a change in Nova's needs shows up loudly in the
log instead of being silently "succeeded".

Usage: python novamove_network.py PORT
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

from novamove_wsgi import TLSMixin, tls_context   # HTTPS with the minicloud's --tls

VERSIONS = {"versions": [{"id": "v2.0", "status": "CURRENT",
                          "links": [{"rel": "self", "href": "/v2.0/"}]}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        path = urlparse(self.path).path.rstrip("/")
        if path in ("", "/"):
            return self._send(200, VERSIONS)
        parts = [p for p in path.split("/") if p]
        if parts[0] != "v2.0" or len(parts) < 2:
            return self._send(404, {"NeutronError": {"message": "not found"}})
        collection = parts[1].removesuffix(".json")
        if len(parts) == 2:
            # /v2.0/ports -> {"ports": []}, /v2.0/security-groups -> {"security_groups": []}
            return self._send(200, {collection.replace("-", "_"): []})
        return self._send(404, {"NeutronError": {"message": "%s %s not found" % (collection, parts[2])}})

    def _unsupported(self) -> None:
        self._send(501, {"NeutronError": {"message": "novamove minicloud network endpoint is read-only"}})

    do_POST = do_PUT = do_DELETE = do_PATCH = _unsupported

    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))


class Server(TLSMixin, ThreadingHTTPServer):
    daemon_threads = True


def main() -> None:
    port = int(sys.argv[1])
    server = Server(("127.0.0.1", port), Handler)
    server.ssl_context = tls_context()
    sys.stderr.write("network endpoint on %s://127.0.0.1:%d\n"
                     % ("https" if server.ssl_context else "http", port))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
