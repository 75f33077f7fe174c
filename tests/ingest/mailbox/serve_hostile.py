"""`stmails serve` whose mailbox scanner classifies with `hanging_classify`, the one seam.

test_served_hostile_mail.py runs it as `python -m ingest.mailbox.serve_hostile PORT` (with
PYTHONPATH=tests and the STMAILS_* variables of its database): the real command, its
migrations, uvicorn and the mailbox worker inside the server process, as users run it.
"""

from __future__ import annotations

import functools
import sys


def main() -> None:
    from ingest.mailbox.hostile import hanging_classify
    from stmails import server
    from stmails.cli.main import main as stmails
    from stmails.workers import mailbox

    server.MailboxWorker = functools.partial(  # type: ignore[misc]
        mailbox.MailboxWorker, classifier=hanging_classify
    )
    # Look for due mailboxes often, so that the test does not wait for the 5 s tick.
    mailbox.TICK_SECONDS = 0.2
    sys.argv = ["stmails", "serve", "--port", sys.argv[1], "--no-sender"]
    stmails()


if __name__ == "__main__":
    main()
