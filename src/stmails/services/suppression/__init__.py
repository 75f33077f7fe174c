"""The suppression list: addresses (by hash) and domains that must not be mailed.

Every send path checks its recipients just before SMTP: the campaign sender in batches
(`check_batch_detail()`), transactional mail and the relay per message (`check_batch()`,
`find()`). Each address is one probe of a unique index, whatever the list holds
(`benchmarks/suppression_lookup.py`). Entries are keyed by the sha256 of the
normalized address, so an entry still blocks after the address text was erased (`erase()`, used
by the bounce action `delete`). An entry is global or scoped to one list; it may expire.
The caller owns the transaction (these functions flush, never commit).

The package's modules, one concern each:

- `entries`: the vocabulary, and parsing and validating entries (`parse_entry`);
- `writes`: adding, upserting, erasing and removing entries;
- `check`: the send-path check (`check_batch`, `check_batch_detail`, `find`, `is_suppressed`);
- `search`: the filters of the API and admin pages, and exports.

Every name is importable from `stmails.services.suppression` as before the split.
"""

from stmails.services.suppression.check import (
    CHECK_BATCH,
    SuppressionHit,
    SuppressionStatus,
    check_batch,
    check_batch_detail,
    find,
    is_suppressed,
    lookup,
)
from stmails.services.suppression.entries import (
    GLOBAL,
    MAX_UPSERT,
    SUPPRESSIONS,
    SuppressionInput,
    SuppressionInputError,
    SuppressionReason,
    entry_to_dict,
    parse_entry,
)
from stmails.services.suppression.search import SearchFilters, entries_for, iterate, search
from stmails.services.suppression.writes import (
    NewSuppression,
    add,
    add_many,
    erase,
    is_erased,
    remove,
    remove_matching,
    upsert_many,
)

__all__ = [
    "CHECK_BATCH",
    "GLOBAL",
    "MAX_UPSERT",
    "SUPPRESSIONS",
    "NewSuppression",
    "SearchFilters",
    "SuppressionHit",
    "SuppressionInput",
    "SuppressionInputError",
    "SuppressionReason",
    "SuppressionStatus",
    "add",
    "add_many",
    "check_batch",
    "check_batch_detail",
    "entries_for",
    "entry_to_dict",
    "erase",
    "find",
    "is_erased",
    "is_suppressed",
    "iterate",
    "lookup",
    "parse_entry",
    "remove",
    "remove_matching",
    "search",
    "upsert_many",
]
