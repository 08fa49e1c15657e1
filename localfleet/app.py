"""A small tenant app for tests: one process per tenant, listening on
127.0.0.1:$PORT, keeping a per-tenant SQLite file of the requests it served.
It logs a line when it starts and one per request (tenement keeps them):
to stderr for paths under /stderr/, and GET /burst/N logs N lines at once."""
import http.server
import json
import os
import sqlite3
import sys
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


def log(line, stream=sys.stdout):
    # After a kill -9 of tenement nobody reads the pipe: the app serves on.
    try:
        print(line, file=stream, flush=True)
    except OSError:
        pass


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with db_lock:
            if self.path != "/health":
                db.execute("INSERT INTO hits (path) VALUES (?)", (self.path,))
                db.commit()
            hits = db.execute("SELECT COUNT(*) FROM hits").fetchone()[0]
        if self.path.startswith("/burst/"):
            arg = self.path[len("/burst/"):]
            n = int(arg) if arg.isdigit() else 0
            log("\n".join("burst %d/%d" % (i + 1, n) for i in range(n)))
        elif self.path.startswith("/stderr/"):
            log("GET %s hits=%d" % (self.path, hits), sys.stderr)
        elif self.path != "/health":
            log("GET %s hits=%d" % (self.path, hits))
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


server_ = Server(("127.0.0.1", int(os.environ["PORT"])), Handler)
log("%s listening on port %s" % (tenant, os.environ["PORT"]))
server_.serve_forever()
