"""A small tenant app for tests: one process per tenant, listening on
127.0.0.1:$PORT, keeping a per-tenant SQLite file of the requests it served."""
import http.server
import json
import os
import sqlite3
import threading

tenant = os.environ.get("TENANT_ID", "unknown")
server = os.environ.get("SERVER_ID", "")
data_dir = os.path.join(os.environ.get("DATA_DIR", "."), "tenants", tenant)
os.makedirs(data_dir, exist_ok=True)
db = sqlite3.connect(os.path.join(data_dir, "app.db"), check_same_thread=False)
db.execute("CREATE TABLE IF NOT EXISTS hits (id INTEGER PRIMARY KEY, path TEXT)")
db.commit()
# One connection shared by the server's threads: concurrent use of it fails
# requests (the connection closes without an answer, which tenement turns
# into a 502), as a burst of retried requests after a failover showed.
db_lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with db_lock:
            if self.path != "/health":
                db.execute("INSERT INTO hits (path) VALUES (?)", (self.path,))
                db.commit()
            hits = db.execute("SELECT COUNT(*) FROM hits").fetchone()[0]
        body = json.dumps({"tenant": tenant, "server": server, "hits": hits}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's 5 refuses a burst


Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
