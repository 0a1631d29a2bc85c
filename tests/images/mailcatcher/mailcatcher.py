#!/usr/bin/env python3
"""TEST mail catcher (odoo-ai tests only; NOT Mailpit): SMTP on 1025, a JSON list of the
messages on 8025 in Mailpit's shape (GET /api/v1/messages), newest first, kept in memory."""

import email
import email.policy
import email.utils
import html
import json
import os
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

SMTP_PORT = int(os.environ.get("MAILCATCHER_SMTP_PORT", "1025"))
HTTP_PORT = int(os.environ.get("MAILCATCHER_HTTP_PORT", "8025"))
MAX_MESSAGES = int(os.environ.get("MAILCATCHER_MAX", "500"))

messages = []  # newest first
lock = threading.Lock()


def _address(value):
    name, addr = email.utils.parseaddr(value or "")
    return {"Name": name, "Address": addr}


def _text(msg):
    part = msg.get_body(preferencelist=("plain",)) if msg.is_multipart() else msg
    try:
        return part.get_content() if part is not None else ""
    except (LookupError, KeyError):
        return ""


class Handler:
    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text = _text(msg)
        record = {
            "ID": uuid.uuid4().hex,
            "MessageID": (msg.get("Message-ID") or "").strip("<>"),
            "From": _address(msg.get("From") or envelope.mail_from),
            "To": [_address(a) for a in (msg.get_all("To") or envelope.rcpt_tos)],
            "Subject": str(msg.get("Subject") or ""),
            "Created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "Size": len(raw),
            "Snippet": " ".join(text.split())[:250],
            "Envelope": {"From": envelope.mail_from, "To": list(envelope.rcpt_tos)},
            "Text": text,
        }
        with lock:
            messages.insert(0, record)
            del messages[MAX_MESSAGES:]
        print(f"mailcatcher: {record['From']['Address']} -> {', '.join(envelope.rcpt_tos)}: {record['Subject']}",
              flush=True)
        return "250 Message accepted for delivery"


class Web(BaseHTTPRequestHandler):
    def _send(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        with lock:
            current = list(messages)
        if path in ("/livez", "/readyz"):
            return self._send(200, "ok", "text/plain")
        if path == "/api/v1/messages":
            summaries = [{k: v for k, v in m.items() if k != "Text"} for m in current]
            return self._send(200, json.dumps({"total": len(current), "count": len(current),
                                               "messages_count": len(current), "messages": summaries}))
        if path.startswith("/api/v1/message/"):
            wanted = path.rsplit("/", 1)[1]
            for m in current:
                if m["ID"] == wanted:
                    return self._send(200, json.dumps(m))
            return self._send(404, json.dumps({"error": "not found"}))
        if path == "/":
            rows = "".join(f"<tr><td>{html.escape(m['Created'])}</td><td>{html.escape(m['From']['Address'])}</td>"
                           f"<td>{html.escape(', '.join(t['Address'] for t in m['To']))}</td>"
                           f"<td>{html.escape(m['Subject'])}</td></tr>" for m in current)
            page = ("<!DOCTYPE html><html><head><title>mail catcher (test)</title></head><body>"
                    "<h1>Mail catcher (odoo-ai test image)</h1><table><tr><th>date</th><th>from</th><th>to</th>"
                    f"<th>subject</th></tr>{rows}</table></body></html>")
            return self._send(200, page, "text/html; charset=utf-8")
        return self._send(404, json.dumps({"error": "not found"}))

    def do_DELETE(self):
        if self.path.split("?", 1)[0].rstrip("/") == "/api/v1/messages":
            with lock:
                messages.clear()
            return self._send(200, "ok", "text/plain")
        return self._send(404, json.dumps({"error": "not found"}))

    def log_message(self, fmt, *args):
        sys.stderr.write("mailcatcher http: " + (fmt % args) + "\n")


def main():
    controller = Controller(Handler(), hostname="0.0.0.0", port=SMTP_PORT)
    controller.start()
    web = ThreadingHTTPServer(("0.0.0.0", HTTP_PORT), Web)
    web.daemon_threads = True

    def stop(signum, frame):
        threading.Thread(target=web.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"mailcatcher (TEST image): SMTP on {SMTP_PORT}, HTTP on {HTTP_PORT}", flush=True)
    try:
        web.serve_forever()
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
