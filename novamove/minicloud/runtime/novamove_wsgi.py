"""Serve one OpenStack WSGI application on 127.0.0.1 with a threaded stdlib server.

Usage: python novamove_wsgi.py MODULE:ATTR PORT

The application is imported with a clean sys.argv: oslo.config parses argv at import time and
would choke on a server's own flags (which is why `gunicorn module:app` breaks).
"""

import importlib
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128


class QuietHandler(WSGIRequestHandler):
    def log_message(self, fmt, *args):  # access log: one line per request on stderr
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


def main() -> None:
    target, port = sys.argv[1], int(sys.argv[2])
    module_name, attr = target.split(":")
    sys.argv = [module_name]
    module = importlib.import_module(module_name)
    app = getattr(module, attr)
    if callable(app) and attr.startswith("init"):   # factories such as initialize_public_application
        app = app()
    server = make_server("127.0.0.1", port, app, server_class=ThreadingWSGIServer,
                         handler_class=QuietHandler)
    sys.stderr.write("serving %s on 127.0.0.1:%d\n" % (target, port))
    sys.stderr.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
