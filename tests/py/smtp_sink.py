"""An SMTP server for the notification tests (aiosmtpd), on 127.0.0.1 and a free port.

    python smtp_sink.py OUT_DIR USER PASSWORD

Accepts AUTH (PLAIN/LOGIN, without TLS: the test is on loopback) for USER/PASSWORD only,
writes every message it receives to OUT_DIR/NNNN.eml (renamed into place when whole),
with the envelope and the authenticated login as X-Sink-* headers first, prints
"listening PORT" once ready, and serves until killed.
"""

import logging
import os
import socket
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, out):
        self.out = out
        self.n = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.n += 1
            n = self.n
        data = session.auth_data
        login = data.login.decode() if session.authenticated and isinstance(data, LoginPassword) else "-"
        head = (
            f"X-Sink-From: {envelope.mail_from}\r\n"
            f"X-Sink-To: {', '.join(envelope.rcpt_tos)}\r\n"
            f"X-Sink-Login: {login}\r\n"
        ).encode()
        path = os.path.join(self.out, f"{n:04}.eml")
        with open(path + ".tmp", "wb") as f:
            f.write(head + envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 Message accepted for delivery"


def main():
    # AUTH without TLS is deliberate here (loopback only): no warning about it.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    out, user, password = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == user and auth_data.password == password
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    controller = Controller(
        Sink(out),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,
        auth_required=True,
    )
    controller.start()
    print(f"listening {port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
