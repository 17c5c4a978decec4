"""Outgoing mail: real SMTP when configured, else the server log and a local mbox file."""

from __future__ import annotations

import logging
import mailbox
import smtplib
import ssl
import threading
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from sharelake.domain.errors import Unavailable

log = logging.getLogger(__name__)


class Mailer:
    def __init__(self, *, smtp_url: str | None, sender: str, outbox: str) -> None:
        self._smtp = urlsplit(smtp_url) if smtp_url else None
        if self._smtp is not None and self._smtp.scheme not in ("smtp", "smtps"):
            raise ValueError("SHARELAKE_SMTP_URL must start with smtp:// or smtps://")
        self._sender = sender
        self._outbox = Path(outbox)
        self._lock = threading.Lock()

    @property
    def delivers(self) -> bool:
        """True when mail leaves this machine (SMTP), False when it lands in the outbox file."""
        return self._smtp is not None

    def send(self, to: str, subject: str, body: str, *, reply_to: str | None = None) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        if reply_to is not None:
            message["Reply-To"] = reply_to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="sharelake")
        if self._smtp is None:
            # The outbox is read by a person who copies the link out of the file: 8bit keeps every
            # line whole, where quoted-printable would break a long URL (`=` line ends, `=3D`).
            message.set_content(body, cte="8bit")
            self._to_outbox(message)
        else:
            message.set_content(body)  # quoted-printable for long lines: safe through any relay
            self._to_smtp(message)

    def _to_outbox(self, message: EmailMessage) -> None:
        log.info(
            "mail (no SMTP configured, kept in %s) to %s: %s\n%s",
            self._outbox,
            message["To"],
            message["Subject"],
            message.get_content(),
        )
        with self._lock:
            self._outbox.parent.mkdir(parents=True, exist_ok=True)
            box = mailbox.mbox(self._outbox)
            try:
                box.lock()
                box.add(message)
                box.flush()
            finally:
                box.unlock()
                box.close()

    def _to_smtp(self, message: EmailMessage) -> None:
        url = self._smtp
        assert url is not None
        options = parse_qs(url.query)
        context = ssl.create_default_context()
        if options.get("insecure", ["0"])[0] in ("1", "true", "yes"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        host = url.hostname or "localhost"
        try:
            if url.scheme == "smtps":
                client: smtplib.SMTP = smtplib.SMTP_SSL(host, url.port or 465, timeout=15, context=context)
            else:
                client = smtplib.SMTP(host, url.port or 25, timeout=15)
            with client:
                client.ehlo()
                if url.scheme == "smtp" and client.has_extn("starttls"):
                    client.starttls(context=context)
                    client.ehlo()
                if url.username:
                    client.login(unquote(url.username), unquote(url.password or ""))
                client.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            log.error("SMTP delivery to %s via %s failed: %s", message["To"], host, exc)
            raise Unavailable(
                "the verification e-mail could not be sent; nothing was changed, try again later",
                code="mail_unavailable",
            ) from exc
