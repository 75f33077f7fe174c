"""How well `stmails.core.classify` generalises beyond the files its rules were written against.

Three measures, each printed with what it means:

1. The shared corpus (../shared/corpus/sisimai, 403 files), scored as `parse_corpus.py` scores
   it, and per MTA group (the file name's prefix, e.g. `lhost-postfix`).
2. Leave-one-group-out: every group of the shared corpus (an MTA, "lhost-postfix", or a
   receiving provider, "rhost-google") scored again with everything stmails has that is
   specific to it switched off: its detector, its rows of the MTA signature table, the
   reporting MTA's own-words table and the receiving provider's code table. What remains is
   what stmails would know about that MTA or provider had it never been described to it: the
   standard and generic readers and the general phrase and status tables (which hold no text
   of any corpus file, only the reason vocabularies). Nothing is refitted; the figure is the
   pooled score over all groups, each scored in its own ablated run.
3. Optional outside corpora, read in place and never copied into the repository:
   `--sisimai DIR`: an rb-sisimai tree (`test/public/*.rb` and `set-of-emails/maildir/bsd`),
   or a git directory of rb-sisimai (a mirror), whose HEAD is then extracted to a temporary
   folder: every sample its public tests give expectations for, split into the files also in
   the shared corpus (same bytes) and the rest. The expectations are Sisimai's, so these
   figures say how closely stmails reads as Sisimai does. No rule keys on a file name or on
   the text of one file (the rules are Sisimai's reason, MTA and provider tables and general
   report layouts), but these samples were read to find what was missing: they are a
   development set, not an independent held-out one (the leave-one-group-out figure is).
   `--flufl DIR`: a flufl.bounce tree (`flufl/bounce/tests/data/*.txt` and the expectations
   table in `flufl/bounce/_detectors/tests/detectors.py`), or a git directory of it: the
   number of messages whose reported recipients are exactly the expected ones, and whether any
   delay warning is hard.

Example: `python benchmarks/parse_generalisation.py --groups --sisimai
/work/.mirror/sisimai+rb-sisimai/repo --flufl /work/.mirror/wRAR+flufl.bounce/repo/.git`.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from parse_corpus import FIELDS
from parse_corpus import score as corpus_score
from stmails.core import classify
from stmails.core.record import BounceRecord

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "sisimai"
Expected = dict[str, list[dict[str, object]]]


def score(expected: Expected, got: Expected, names: list[str]) -> dict[str, float]:
    """The corpus README's figures (`parse_corpus.score`) over the files `names`, with the
    number of bounce files among them."""
    subset = {name: expected[name] for name in names}
    figures = corpus_score(subset, {name: got.get(name, []) for name in names})
    figures["files"] = float(sum(1 for recs in subset.values() if recs))
    return figures


def fields_of(records: list[BounceRecord]) -> list[dict[str, object]]:
    """The scored fields of each record."""
    return [
        {"status": r.status, "replycode": r.replycode, "reason": r.reason, "hard": r.hard}
        for r in records
    ]


def line(label: str, figures: dict[str, float]) -> str:
    """One printed row of figures."""
    cells = "  ".join(f"{field} {figures[field]:.3f}" for field in ("detection", *FIELDS))
    return f"{label:<34} {int(figures['files']):4d} files  {cells}"


def group_of(name: str) -> str:
    """The MTA group of a sample file: its name without the trailing number."""
    return re.sub(r"-\d+\.eml$", "", name)


# --- Sisimai's public test expectations (Ruby hashes of rows) --------------------------------

_MODULE_FILE = re.compile(r"^(?:(lhost|rhost)-)?([a-z0-9]+)\.rb$")
_ENTRY = re.compile(r"'(\d+)'\s*=>\s*\[(.*?)\]\s*\]", re.DOTALL)
_ROW = re.compile(r"\[\s*'([^']*)',\s*'([^']*)',\s*'([^']*)',\s*(true|false)")


def sisimai_expectations(tree: Path) -> dict[Path, list[dict[str, object]]]:
    """Sample path -> expected rows, from rb-sisimai's test/public/{lhost,rhost}-*.rb,
    arf.rb, rfc3464.rb and rfc3834.rb."""
    out: dict[Path, list[dict[str, object]]] = {}
    samples = tree / "set-of-emails" / "maildir" / "bsd"
    for path in sorted((tree / "test" / "public").glob("*.rb")):
        match = _MODULE_FILE.match(path.name)
        if match is None or path.name.endswith(("-test.rb", "-code.rb")):
            continue
        kind, name = match.groups()
        if kind is None and name not in ("arf", "rfc3464", "rfc3834"):
            continue
        prefix = f"{kind}-{name}" if kind else name
        for index, rows in _ENTRY.findall(path.read_text() + "]"):
            sample = samples / f"{prefix}-{int(index):02d}.eml"
            if not sample.is_file():
                continue
            out[sample] = [
                {"status": s, "replycode": r, "reason": reason, "hard": hard == "true"}
                for s, r, reason, hard in _ROW.findall(rows + "]")
            ]
    return out


# --- flufl.bounce's expectations (a Python tuple of (module, file, addresses[, temporary])) ---


def flufl_expectations(tree: Path) -> dict[str, tuple[set[str], bool]]:
    """File name -> (expected recipients lowercased, whether they are delay warnings)."""
    source = (tree / "flufl" / "bounce" / "_detectors" / "tests" / "detectors.py").read_text()
    start = source.index("DATA = (")
    table = ast.literal_eval(source[start + len("DATA = ") :].split("\n\n\n")[0].strip())
    out: dict[str, tuple[set[str], bool]] = {}
    for row in table:
        name = row[1]
        addresses = {a.decode().lower() for a in row[2]}
        temporary = len(row) > 3 and bool(row[3])
        known, _ = out.get(name, (set(), False))
        out[name] = (known | addresses, temporary)
    return out


# --- leave-one-group-out ---------------------------------------------------------------------

# What stmails has that is specific to a group of the corpus, by the names the core uses:
# detectors of the registry, rows of the MTA signature table, the reporting-MTA tables and
# the receiving-provider tables. Groups of standards (ARF, RFC 3464, RFC 3834) have nothing
# specific to take away.
SPECIFIC: dict[str, tuple[str, ...]] = {
    "lhost-gsuite": ("gmail", "google"),
    "lhost-googleworkspace": ("gmail", "google"),
    "rhost-gsuite": ("gmail", "google"),
    "lhost-interscanmss": ("trendmicro",),
    "lhost-mailmarshal": ("mailmarshalsmtp",),
    "rhost-franceptt": ("orange",),
    "rhost-yahooinc": ("yahoo",),
    "rhost-aol": ("aol", "yahoo"),
    "rhost-outlook": ("outlook", "microsoft", "office365"),
    "rhost-microsoft": ("microsoft", "office365", "exchange2007"),
    "rhost-kddi": ("kddi", "ezweb"),
    "lhost-kddi": ("kddi", "ezweb"),
    "lhost-ezweb": ("ezweb", "kddi"),
    "rhost-messagelabs": ("messagelabs",),
    "rhost-facebook": ("facebook",),
    "rhost-zoho": ("zoho",),
}


def components_of(group: str) -> tuple[str, ...]:
    """The names of what stmails has for one group (an MTA or a receiving provider)."""
    if group in SPECIFIC:
        return SPECIFIC[group]
    kind, _, name = group.partition("-")
    return (name,) if kind in ("lhost", "rhost") else ()


@contextlib.contextmanager
def without(names: tuple[str, ...]) -> Iterator[None]:
    """Switch off the detectors, signature rows, MTA tables and provider tables named."""
    from stmails.core import classifier, mta
    from stmails.core.reasons import mtas, receivers
    from stmails.core.reasons.receivers import cox, orange, yahoo

    saved = {
        (classifier, "REGISTRY"): classifier.REGISTRY,
        (mta, "SIGNATURES"): mta.SIGNATURES,
        (mtas, "MTA_MESSAGES"): mtas.MTA_MESSAGES,
        (mtas, "MTA_COMMANDS"): mtas.MTA_COMMANDS,
        (receivers, "RECEIVERS"): receivers.RECEIVERS,
        (orange, "reason_from_code"): orange.reason_from_code,
        (cox, "reason_from_code"): cox.reason_from_code,
        (yahoo, "reason_from_code"): yahoo.reason_from_code,
    }
    try:
        classifier.REGISTRY = tuple(e for e in classifier.REGISTRY if e[0] not in names)  # type: ignore[misc]
        mta.SIGNATURES = tuple(row for row in mta.SIGNATURES if row[0] not in names)  # type: ignore[misc]
        mtas.MTA_MESSAGES = {k: v for k, v in mtas.MTA_MESSAGES.items() if k not in names}  # type: ignore[misc]
        mtas.MTA_COMMANDS = {k: v for k, v in mtas.MTA_COMMANDS.items() if k not in names}  # type: ignore[misc]
        receivers.RECEIVERS = tuple(r for r in receivers.RECEIVERS if r.name not in names)  # type: ignore[misc]
        for module in (orange, cox, yahoo):
            if module.__name__.rsplit(".", 1)[1] in names:
                module.reason_from_code = lambda text: ""  # type: ignore[assignment]
        yield
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)


def checkout(path: Path, members: tuple[str, ...], into: Path) -> Path:
    """`path` itself when it is a work tree, else its HEAD's `members` extracted into `into`
    (for a bare git directory, as a mirror is)."""
    if not (path / "HEAD").is_file() or not (path / "objects").is_dir():
        return path
    archive = subprocess.run(
        ["git", "--git-dir", str(path), "archive", "--format=tar", "HEAD", *members],
        check=True,
        capture_output=True,
    ).stdout
    with tempfile.TemporaryFile() as tar:
        tar.write(archive)
        tar.seek(0)
        with tarfile.open(fileobj=tar) as tree:
            tree.extractall(into, filter="data")
    return into


def main() -> int:
    """Print the figures; exit 1 when the shared corpus is absent."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--sisimai", type=Path, help="an rb-sisimai tree or git directory")
    parser.add_argument("--flufl", type=Path, help="a flufl.bounce tree or git directory")
    parser.add_argument("--groups", action="store_true", help="print every group's figures")
    parser.add_argument("--verbose", action="store_true", help="list mismatching files")
    args = parser.parse_args()
    expected_path = args.corpus / "expected.json"
    if not expected_path.is_file():
        print(f"corpus not found at {args.corpus}", file=sys.stderr)
        return 1
    expected: Expected = json.loads(expected_path.read_text())
    files = {path.name: path for path in sorted((args.corpus / "eml").glob("*.eml"))}
    raw = {name: path.read_bytes() for name, path in files.items()}
    got = {name: fields_of(classify(data)) for name, data in raw.items()}
    names = sorted(expected)
    print(line("shared corpus", score(expected, got, names)))
    groups: dict[str, list[str]] = defaultdict(list)
    for name in names:
        groups[group_of(name)].append(name)
    ablated: Expected = {}
    for group, members in sorted(groups.items()):
        if not any(expected[name] for name in members):
            # Messages that are no bounce (expected to give nothing): no figures to print.
            continue
        with without(components_of(group)):
            for name in members:
                ablated[name] = fields_of(classify(raw[name]))
        if args.groups:
            print(line(f"  {group}", score(expected, got, members)))
            print(line(f"  {group} (left out)", score(expected, ablated, members)))
    print(line("leave-one-group-out", score(expected, ablated, names)))
    print("  (each group scored with its detector, signatures, MTA and provider tables off)")
    if args.verbose:
        for name in names:
            want = sorted(json.dumps({k: r.get(k) for k in FIELDS}) for r in expected[name])
            have = sorted(json.dumps(r) for r in got[name])
            if want != have:
                print(f"  {name}\n    want {want}\n    got  {have}")
    scratch = tempfile.TemporaryDirectory()
    if args.sisimai:
        tree = checkout(
            args.sisimai, ("test/public", "set-of-emails/maildir/bsd"), Path(scratch.name) / "s"
        )
        shared = {hashlib.sha256(data).hexdigest() for data in raw.values()}
        rows = sisimai_expectations(tree)
        inside: Expected = {}
        outside: Expected = {}
        results: Expected = {}
        for path, want in rows.items():
            data = path.read_bytes()
            key = path.name
            (inside if hashlib.sha256(data).hexdigest() in shared else outside)[key] = want
            results[key] = fields_of(classify(data))
        print(line("rb-sisimai samples, in shared", score(inside, results, sorted(inside))))
        print(line("rb-sisimai samples, not in shared", score(outside, results, sorted(outside))))
        if args.verbose:
            for key in sorted(outside):
                want = sorted(json.dumps({k: r.get(k) for k in FIELDS}) for r in outside[key])
                have = sorted(json.dumps(r) for r in results[key])
                if want != have:
                    print(f"  {key}\n    want {want}\n    got  {have}")
    if args.flufl:
        tree = checkout(
            args.flufl,
            ("flufl/bounce/tests/data", "flufl/bounce/_detectors/tests/detectors.py"),
            Path(scratch.name) / "f",
        )
        table = flufl_expectations(tree)
        data_dir = tree / "flufl" / "bounce" / "tests" / "data"
        exact = 0
        warnings = 0
        hard_warnings = 0
        misses: list[str] = []
        for name, (want, temporary) in sorted(table.items()):
            records = classify((data_dir / name).read_bytes())
            have = {r.recipient for r in records}
            if have == want:
                exact += 1
            else:
                misses.append(f"  {name}: want {sorted(want)} got {sorted(have)}")
            if temporary:
                warnings += 1
                hard_warnings += any(r.hard for r in records)
        print(
            f"flufl.bounce samples: exact recipients for {exact} of {len(table)}; "
            f"{hard_warnings} of {warnings} delay warnings reported hard"
        )
        if args.verbose:
            print("\n".join(misses))
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
