"""DMARC aggregate reports that arrive in a bounce mailbox (Dovecot, IMAP and POP3) are read
and kept like uploaded ones (source `mailbox`), and taken out of the mailbox like bounces; a
message that only looks like one is left to the bounce classifier."""

from __future__ import annotations

import gzip
import io
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from stmails.config import Settings
from stmails.db.models import Bounce, DmarcRecord, DmarcReport
from stmails.ingest.mailbox.dmarc import report_attachments
from stmails.services import settings as settings_service
from stmails.workers.mailbox import MailboxWorker

from .conftest import Mailbox
from .messages import dsn
from .test_worker import served_entry

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[2] / "data" / "dmarc"


def report_mail(attachment: bytes, filename: str, content_type: str, subject: str) -> bytes:
    """A report as receivers mail it (RFC 7489 section 7.2.1.1): a short text and the report."""
    message = EmailMessage()
    message["From"] = "noreply-dmarc@receiver.example"
    message["To"] = "bounces@sender.example"
    message["Subject"] = subject
    message["Message-ID"] = f"<{filename}@receiver.example>"
    message.set_content("This is an aggregate report from receiver.example.")
    main, sub = content_type.split("/")
    message.add_attachment(attachment, maintype=main, subtype=sub, filename=filename)
    return message.as_bytes()


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def test_reports_in_the_bounce_mailbox_are_kept_and_bounces_still_recorded(
    mailbox: Mailbox, session_maker: sessionmaker[Session], db_url: str, tmp_path: Path
) -> None:
    with session_maker() as session:
        settings_service.set_value(session, "bounce.mailboxes", [served_entry(mailbox)])
        session.commit()
    xml = (DATA / "rfc7489-receiver.xml").read_bytes()
    bis = (DATA / "dmarcbis-namespaced.xml").read_bytes()
    name = "receiver.example!example.org!1793491200!1793577599.xml"
    mailbox.append(
        report_mail(
            gzip.compress(xml),
            name + ".gz",
            "application/gzip",
            "Report Domain: example.org Submitter: receiver.example Report-ID: 1",
        ),
        report_mail(zipped("bis.xml", bis), "other!example.org!1!2.zip", "application/zip", "x"),
        # The same report mailed twice is kept once.
        report_mail(gzip.compress(xml), name + ".gz", "application/gzip", "Report Domain: again"),
        # Looks like a report, is not one: the classifier ignores it; nothing stored.
        report_mail(b"\x1f\x8bnot really gzip", "fake.xml.gz", "application/gzip", "Report-ID: x"),
        dsn("mona@dest.example", subject="a-real-bounce"),
    )
    worker = MailboxWorker(session_maker, Settings(database_url=db_url, data_dir=tmp_path))
    (summary,) = worker.run_due(1000.0)
    assert (summary.reports, summary.bounces, summary.ignored) == (3, 1, 1)
    with session_maker() as session:
        reports = session.scalars(select(DmarcReport).order_by(DmarcReport.org_name)).all()
        assert {r.source for r in reports} == {"mailbox"}
        assert len(reports) == 2
        assert session.scalar(select(func.count()).select_from(DmarcRecord)) > 0
        assert session.scalar(select(func.count()).select_from(Bounce)) == 1
    # Reports and the bounce are done with; the fake stays for a person to look at.
    assert mailbox.subjects() == ["Report-ID: x"]


def test_only_report_like_attachments_are_offered() -> None:
    xml = (DATA / "rfc7489-receiver.xml").read_bytes()
    mail = report_mail(gzip.compress(xml), "r!example.org!1!2.xml.gz", "application/gzip", "Rpt")
    assert len(report_attachments(mail)) == 1
    assert gzip.decompress(report_attachments(mail)[0]) == xml
    assert report_attachments(dsn("mona@dest.example")) == []
    odd = report_mail(b"%PDF-1.4", "invoice.pdf", "application/octet-stream", "Report Domain: x")
    assert report_attachments(odd) == []
