"""Serve one OpenStack WSGI application on 127.0.0.1 with a threaded stdlib server.

Usage: python novamove_wsgi.py MODULE:ATTR[,MODULE:ATTR...] PORT

The first MODULE that exists is served: today's releases have `<service>.wsgi.api`-style modules,
older ones (2024.1) only the factories they replaced, named after it.

The application is imported with a clean sys.argv: oslo.config parses argv at import time and
would choke on a server's own flags (which is why `gunicorn module:app` breaks).

With NOVAMOVE_TLS_CERT and NOVAMOVE_TLS_KEY in the environment it serves HTTPS instead (the
minicloud's --tls); the TLS handshake runs in the request's own thread, so one slow or refused
client never holds up the others.
"""

import importlib
import os
import socketserver
import ssl
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


def tls_context():
    """A server-side SSLContext from the environment, or None when TLS is off."""
    cert, key = os.environ.get("NOVAMOVE_TLS_CERT"), os.environ.get("NOVAMOVE_TLS_KEY")
    if not (cert and key):
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


class TLSMixin:
    """For socketserver servers: wrap each accepted connection in TLS in its handler thread."""
    ssl_context = None

    def finish_request(self, request, client_address):
        if self.ssl_context is None:
            return super().finish_request(request, client_address)
        request.settimeout(30)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:   # e.g. a client that does not trust our CA
            sys.stderr.write("%s TLS handshake failed: %s\n" % (client_address[0], exc))
            return None
        tls.settimeout(None)
        try:
            return super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class ThreadingWSGIServer(TLSMixin, socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128


class QuietHandler(WSGIRequestHandler):
    def get_environ(self):
        env = super().get_environ()
        if self.server.ssl_context is not None:
            env["HTTPS"] = "on"          # wsgiref then sets wsgi.url_scheme = https
        return env

    def log_message(self, fmt, *args):  # access log: one line per request on stderr
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


def load(targets: str):
    """The application of the first importable MODULE:ATTR of the comma-separated `targets`."""
    for target in targets.split(","):
        module_name, attr = target.split(":")
        sys.argv = [module_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # Only "this release has no such module" moves on; a missing dependency is an error.
            if exc.name and module_name.startswith(exc.name) and target != targets.split(",")[-1]:
                continue
            raise
        return target, attr, getattr(module, attr)
    raise ImportError(targets)


def main() -> None:
    targets, port = sys.argv[1], int(sys.argv[2])
    target, attr, app = load(targets)
    if callable(app) and attr.startswith("init"):   # factories such as initialize_public_application
        app = app()
    server = make_server("127.0.0.1", port, app, server_class=ThreadingWSGIServer,
                         handler_class=QuietHandler)
    server.ssl_context = tls_context()
    sys.stderr.write("serving %s on %s://127.0.0.1:%d\n"
                     % (target, "https" if server.ssl_context else "http", port))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
