"""Which MTA or mailbox provider wrote a report, from the marks it puts on every report.

The standard DSN reader and the generic text reader read many MTAs' reports; naming the
MTA in the record's `detector` keeps each decision explainable. The table is data: each row
is a mark that MTA always emits (its sender address, subject, a header of its own, a fixed
sentence of its report text). Providers come before the MTA software they run (mail.ru runs
Exim, Yandex runs Postfix), marks that relaying systems add come last, and the first row
that matches names the MTA.
"""

from __future__ import annotations

from stmails.core.context import Context

# Where a mark is looked for: the From header, the Subject, the Message-ID, the Received
# headers, the name of a header present at the top level, the report's text (its human part
# before the quoted original, plus the delivery-status part), or the X-Mailer header.
_FROM, _SUBJECT, _MESSAGE_ID, _RECEIVED, _HEADER, _TEXT, _X_MAILER = range(7)

# (MTA name, where, lowercase mark), in the order they are tried.
SIGNATURES: tuple[tuple[str, int, str], ...] = (
    ("facebook", _FROM, "mailer-daemon@mx.facebook.com"),
    ("gmail", _FROM, "@googlemail.com"),
    ("gmail", _TEXT, "delivery to the following recipient failed permanently"),
    ("gmail", _TEXT, "delivery to the following recipients failed permanently"),
    ("yahoo", _FROM, "@yahoo."),
    ("yahoo", _TEXT, "sorry, we were unable to deliver your message to the following address"),
    ("yahoo", _HEADER, "x-ymailisg"),
    ("aol", _HEADER, "x-aol-ip"),
    ("aol", _FROM, "@aol.com"),
    ("messagelabs", _FROM, "@messagelabs.com"),
    ("mailru", _FROM, "@corp.mail.ru"),
    ("mailru", _FROM, "@mail.ru"),
    ("yandex", _FROM, "@yandex."),
    ("yandex", _HEADER, "x-yandex-uniq"),
    ("gmx", _FROM, "@mail.gmx."),
    ("gmx", _FROM, "@gmx."),
    ("gmx", _HEADER, "x-gmx-antispam"),
    ("zoho", _FROM, "@mail.zoho."),
    ("zoho", _HEADER, "x-zohomail"),
    ("biglobe", _FROM, "@biglobe.ne.jp"),
    ("kddi", _FROM, ".dion.ne.jp"),
    ("verizon", _FROM, "vzwpix.com"),
    ("verizon", _FROM, "post_master@vtext.com"),
    ("mxlogic", _FROM, ".mxlogic.net"),
    ("mxlogic", _HEADER, "x-mx-bounce"),
    ("mxlogic", _HEADER, "x-mxl-hash"),
    ("mxlogic", _HEADER, "x-mxl-notehash"),
    ("activehunter", _HEADER, "x-ahmailid"),
    ("amavis", _FROM, '"content-filter at '),
    ("amazonworkmail", _X_MAILER, "amazon workmail"),
    ("bigfoot", _FROM, "@bigfoot.com"),
    ("mailfoundry", _RECEIVED, "(mailfoundry) id "),
    ("mailmarshalsmtp", _SUBJECT, 'undeliverable mail: "'),
    ("imailserver", _X_MAILER, "<smtp32 v"),
    ("surfcontrol", _X_MAILER, "surfcontrol e-mail filter"),
    ("receivingses", _TEXT, "reporting-mta: dns; inbound-smtp."),
    ("trendmicro", _FROM, "interscan"),
    ("trendmicro", _TEXT, "message from interscan messaging security suite"),
    ("mfilter", _X_MAILER, "m-filter"),
    ("barracuda", _SUBJECT, "message you sent blocked by our bulk email filter"),
    ("powermta", _TEXT, "x-powermta-"),
    ("office365", _FROM, "@outlook.com"),
    ("office365", _FROM, ".onmicrosoft.com"),
    ("outlook", _FROM, "hotmail."),
    ("exchange2003", _HEADER, "x-ms-embedded-report"),
    ("exchange2003", _HEADER, "x-mimeole"),
    ("exchange2003", _TEXT, "msexch:"),
    ("exchange2003", _MESSAGE_ID, "internet mail service (5."),
    ("exchange2007", _TEXT, "diagnostic information for administrators"),
    ("domino", _SUBJECT, "delivery failure:"),
    ("domino", _SUBJECT, "delivery_failure:"),
    ("domino", _TEXT, "domino directory"),
    ("notes", _TEXT, "------- failure reasons"),
    ("notes", _RECEIVED, "(lotus smtp mta"),
    ("messagingserver", _TEXT, "this report relates to a message you sent with the following"),
    ("apachejames", _MESSAGE_ID, ".javamail."),
    ("dragonfly", _TEXT, "this is the dragonfly mail agent"),
    ("dragonfly", _RECEIVED, "(dragonfly mail agent"),
    ("opensmtpd", _TEXT, "this is the mailer-daemon, please do not reply"),
    ("opensmtpd", _RECEIVED, " (opensmtpd) with "),
    ("courier", _TEXT, "running the courier mail server"),
    ("courier", _TEXT, "courier mail server at"),
    ("courier", _FROM, "courier mail server at "),
    ("courier", _MESSAGE_ID, "<courier."),
    ("qmail", _TEXT, "this is the qmail-send program"),
    ("qmail", _TEXT, "qmail-send"),
    ("postfix", _TEXT, "this is the mail system at host"),
    ("postfix", _TEXT, "x-postfix-queue-id"),
    ("postfix", _HEADER, "x-postfix-queue-id"),
    ("postfix", _TEXT, "the postfix program"),
    ("postfix", _SUBJECT, "postfix smtp server: errors from"),
    ("postfix", _SUBJECT, "undelivered mail returned to sender"),
    ("exim", _TEXT, "this message was created automatically by mail delivery software"),
    ("exim", _SUBJECT, "mail delivery failed: returning message to sender"),
    ("exim", _TEXT, "a message that you sent contained one or more recipient addresses"),
    ("exim", _TEXT, "a message that you sent could not be delivered to all of its recipients"),
    ("exim", _TEXT, "a message that you sent was rejected by the local scan"),
    ("sendmail", _TEXT, "----- transcript of session follows -----"),
    ("sendmail", _TEXT, "----- the following addresses had permanent fatal errors -----"),
    ("sendmail", _SUBJECT, "returned mail: see transcript for details"),
    # Exchange Online stamps these on every message it handles, also on reports that other
    # MTAs wrote and it only carried: they count only when nothing else is recognized.
    ("office365", _HEADER, "x-ms-exchange-crosstenant-network-message-id"),
    ("office365", _HEADER, "x-ms-exchange-transport-crosstenantheadersstamped"),
)

_TEXT_SCAN = 6000
_DSN_SCAN = 3000
_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")


def _view(ctx: Context, where: int) -> str | set[str]:
    root = ctx.root
    if where == _FROM:
        return root.get("from")[:500].lower()
    if where == _SUBJECT:
        return ctx.subject[:500].lower()
    if where == _MESSAGE_ID:
        return root.get("message-id")[:500].lower()
    if where == _RECEIVED:
        return " ".join(value[:500] for value in root.get_all("received")[:20]).lower()
    if where == _X_MAILER:
        return root.get("x-mailer")[:500].lower()
    if where == _HEADER:
        return {name for name, _ in root.headers[:200]}
    dsn = ctx.first_part(*_DSN_TYPES)
    status_text = dsn.text(_DSN_SCAN)[:_DSN_SCAN] if dsn is not None else ""
    return f"{ctx.bounce_text[:_TEXT_SCAN]}\n{status_text}".lower()


def identify_mta(ctx: Context) -> str:
    """The name of the MTA or provider whose marks the report carries, or ""."""
    views: dict[int, str | set[str]] = {}
    for name, where, mark in SIGNATURES:
        view = views.get(where)
        if view is None:
            view = views[where] = _view(ctx, where)
        if mark in view:
            return name
    return ""
