"""Deprecated alias of `stmails.services.campaign_records` (the campaign records' CRUD and
status rules), kept so that old imports work; import `campaign_records` in new code. Sending
campaigns is `stmails.services.sending.campaigns`."""

from stmails.services.campaign_records import *  # noqa: F403
