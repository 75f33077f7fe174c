"""The templates a new installation starts with, as listmonk's install makes them: a default
campaign template (campaigns created without `template_id` use it) and a sample transactional
template.

Both are written in listmonk's Go-template dialect, which stmails' renderer understands
(services.sending.templates), so that they read like the templates listmonk users know. The
migration that introduced them (0009_parity) stores them once; they are ordinary templates
afterwards, to be edited or (the sample) deleted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DefaultTemplate:
    """One template to install: its name, type, subject (tx only), body and default flag."""

    name: str
    type: str
    subject: str
    body: str
    is_default: bool


CAMPAIGN_BODY = """<!doctype html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ .Campaign.Subject }}</title>
<style>
  body { margin: 0; padding: 0; background: #f3f4f6; color: #1f2937;
         font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
         font-size: 16px; line-height: 1.6; }
  .outer { padding: 24px 12px; }
  .card { max-width: 640px; margin: 0 auto; background: #ffffff; border-radius: 6px;
          padding: 32px 28px; }
  .card img { max-width: 100%; height: auto; }
  .card a { color: #2563eb; }
  .footer { max-width: 640px; margin: 16px auto 0; text-align: center; font-size: 13px;
            color: #6b7280; }
  .footer a { color: #6b7280; }
</style>
</head>
<body>
<div class="outer">
  <div class="card">
{{ template "content" . }}
  </div>
  <div class="footer">
    <p>You receive this because you subscribed to our mailing list.<br>
    <a href="{{ UnsubscribeURL }}">Unsubscribe</a>
    &middot; <a href="{{ ManageURL }}">Manage your subscriptions</a>
    &middot; <a href="{{ MessageURL }}">View in a browser</a></p>
  </div>
</div>
{{ TrackView }}
</body>
</html>
"""

TX_SUBJECT = "Your order {{ .Tx.Data.order_id }} is on its way"
TX_BODY = """<!doctype html>
<html>
<body style="font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif;
             color: #1f2937; line-height: 1.6;">
<p>Hello {{ .Subscriber.Name }},</p>
<p>This is a sample transactional message. An application sends it with
<code>POST /api/tx</code>, naming this template and passing its own data, which the message
reads as <code>.Tx.Data</code>:</p>
<p>Order <strong>{{ .Tx.Data.order_id }}</strong> was shipped on
{{ .Tx.Data.shipped_on }}.</p>
<p>Thank you.</p>
</body>
</html>
"""

DEFAULTS: tuple[DefaultTemplate, ...] = (
    DefaultTemplate("Default campaign template", "campaign", "", CAMPAIGN_BODY, True),
    DefaultTemplate("Sample transactional template", "tx", TX_SUBJECT, TX_BODY, False),
)
