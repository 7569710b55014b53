"""Outgoing mail: one message to one address, over SMTP or into a directory.

With ``smtp_host`` set, a message goes to that relay (STARTTLS, implicit TLS, or plain on
loopback; login when a user name is set). Without one (the embedded default, development and
tests), it is written as an ``.eml`` file to ``mail_outbox_dir`` and logged, so ``./run serve``
works with no mail server and a developer reads the codes there. Production refuses to start
without a relay (core/settings.py).

Callers send from a job (accounts/tasks.py), never inside a request: a relay that is down
fails the job, which the outbox retries; a relay that refuses the address for good is a
permanent failure with a code.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from core.errors import AppError, RetryableError
from core.settings import Settings, SmtpSecurity, get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    language: str  # BCP 47, for Content-Language
    # Stable per mail row, so a retry after an unknown outcome is recognisable as the same
    # message by the receiving side (and by anyone reading two copies).
    message_id: str


class MailRejected(AppError):
    status = 422
    code = "mail_rejected"
    title = "Mail rejected"


def message_id(key: str) -> str:
    domain = get_settings().mail_from.rsplit("@", 1)[-1].strip(" >") or "pocketcinema.invalid"
    return make_msgid(idstring=key, domain=domain)


def build(mail: Mail, settings: Settings) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = mail.message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    message.set_content(mail.text)  # UTF-8, quoted-printable or base64 as needed
    message["Content-Language"] = mail.language  # after set_content, which resets Content-*
    return message


def send(mail: Mail) -> None:
    settings = get_settings()
    message = build(mail, settings)
    if not settings.smtp_host:
        _write_to_outbox(message, settings.mail_dir, mail)
        return
    try:
        _send_smtp(message, settings)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if all(500 <= code < 600 for code in codes):
            # 5xx is final for this address: retrying would only annoy the relay.
            raise MailRejected(f"the relay refused the address: {codes}") from None
        raise RetryableError(
            f"the relay deferred the address: {codes}", code="mail_deferred"
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise RetryableError(f"cannot send mail: {exc}", code="smtp_unavailable") from exc


def _send_smtp(message: EmailMessage, settings: Settings) -> None:
    host, port, timeout = settings.smtp_host, settings.smtp_port, settings.smtp_timeout_seconds
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.smtp_security is SmtpSecurity.tls:
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        if settings.smtp_security is SmtpSecurity.starttls:
            smtp.starttls(context=context)
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(message)


def _write_to_outbox(message: EmailMessage, directory: Path, mail: Mail) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    name = mail.message_id.strip("<>").replace("@", "_").replace("/", "_")
    path = directory / f"{name}.eml"
    # Write then rename: a reader polling the directory never sees half a message.
    partial = path.with_suffix(".part")
    partial.write_bytes(bytes(message))
    partial.replace(path)
    # Development convenience: the code is in the text; show it where the developer looks.
    log.info(
        "mail to %s written to %s (no SMTP host configured): %s\n%s",
        mail.to,
        path,
        mail.subject,
        mail.text,
    )
