#!/usr/bin/env python3
"""A tenant app that keeps its state in SQLite, for slum's replicated recipe.

It listens on 127.0.0.1:$PORT (tenement's port) and keeps its database at
$SLUM_GUARD_DB (set by 'slum guard'), else $DB_PATH, else ./app.db.

  GET  /health        200 once the database is open
  POST /writes        body: any text; stores it, answers 200 {"id": N}
                      only after the transaction has committed
  GET  /writes        200 {"ids": [...]}: every stored write's id
  GET  /writes/bodies 200 {"bodies": [...]}: every stored write's body, in id order
  GET  /              200, a line saying how many writes are stored

A write is acknowledged only once it is durable in the local database;
Litestream sends it to the replica about a second later.
"""
import json
import os
import signal
import sqlite3
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DB = os.environ.get("SLUM_GUARD_DB") or os.environ.get("DB_PATH") or "app.db"
LOCK = threading.Lock()


def connect():
    db = sqlite3.connect(DB, timeout=5, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")  # Litestream replicates the WAL
    db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before the ack
    db.execute("PRAGMA busy_timeout=5000")  # Litestream takes short locks
    db.execute("CREATE TABLE IF NOT EXISTS writes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    return db


CONN = connect()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send(self, code, obj):
        body = (json.dumps(obj) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            with LOCK:
                CONN.execute("SELECT 1").fetchone()
            return self.send(200, {"status": "ok"})
        if self.path == "/writes":
            with LOCK:
                ids = [r[0] for r in CONN.execute("SELECT id FROM writes ORDER BY id")]
            return self.send(200, {"ids": ids})
        if self.path == "/writes/bodies":
            with LOCK:
                bodies = [r[0] for r in CONN.execute("SELECT body FROM writes ORDER BY id")]
            return self.send(200, {"bodies": bodies})
        if self.path == "/":
            with LOCK:
                n = CONN.execute("SELECT count(*) FROM writes").fetchone()[0]
            return self.send(200, {"writes": n, "db": DB})
        self.send(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/writes":
            return self.send(404, {"error": "not found"})
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode(errors="replace") if n else ""
        try:
            with LOCK:
                CONN.execute("BEGIN IMMEDIATE")
                cur = CONN.execute("INSERT INTO writes (body) VALUES (?)", (body,))
                CONN.execute("COMMIT")
        except sqlite3.Error as e:
            try:
                CONN.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            return self.send(503, {"error": str(e)})
        self.send(200, {"id": cur.lastrowid})

    def log_message(self, *args):
        pass


def main():
    port = int(os.environ.get("PORT", "8080"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"app: serving {DB} on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    server.serve_forever(poll_interval=0.1)
    CONN.close()


if __name__ == "__main__":
    main()
