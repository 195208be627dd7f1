"""moto's server (`python -m moto.server ARGS`) as ddb-audit's tests and demo run it.

    python tests/moto_server.py -H 127.0.0.1 -p PORT

Two additions to moto as it comes:

- It exits as soon as its standard input closes. The process that started it
  holds the other end of that pipe, so the server goes away with it even if
  that process dies without cleaning up (abort, SIGKILL): no orphan servers.
  Run it with stdin from a pipe you keep open (not a terminal you close).
  DDB_AUDIT_MOTO_DETACHED=1 turns this off, for a server meant to outlive
  its starter (`make demo KEEP=1`); stop that one yourself.
- Requests run one at a time (a lock around moto's WSGI application), unless
  DDB_AUDIT_MOTO_REQUESTS=concurrent. moto's DynamoDB backend takes no lock:
  concurrent writes can lose updates, and a cancelled transaction rolls its
  whole table back to a copy taken when it started. Real DynamoDB does
  neither, so by default each call is atomic, as DynamoDB's are; connections,
  and so the interleaving of calls, stay concurrent.
"""

import os
import runpy
import sys
import threading


def _watch_stdin():
    while os.read(0, 4096):
        pass
    os._exit(0)


if os.environ.get("DDB_AUDIT_MOTO_DETACHED") != "1":
    threading.Thread(target=_watch_stdin, daemon=True).start()

if os.environ.get("DDB_AUDIT_MOTO_REQUESTS", "one-at-a-time") != "concurrent":
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication as _App

    _lock = threading.Lock()
    _call = _App.__call__

    def _one_at_a_time(self, environ, start_response):
        with _lock:
            return _call(self, environ, start_response)

    _App.__call__ = _one_at_a_time

sys.argv[0] = "moto.server"
runpy.run_module("moto.server", run_name="__main__", alter_sys=True)
