"""Sender hygiene costs: the content check of one campaign, and reading DMARC aggregate reports.

- Content check: `check_content` over a generated newsletter (about 2,000 words and 60 links in
  HTML, with its text part), median of many runs; the baseline is the standard library's HTML
  tokenizer alone over the same HTML (what any HTML-reading check pays), and the ratio is
  printed.
- DMARC reports: `read_report` over a generated gzip report of N records (default 50,000), then
  `store` into a fresh SQLite database; the baseline is `xml.etree.ElementTree.fromstring` of the
  same XML (no safety, no budgets, no record building), and the ratio is printed.

Usage: python benchmarks/hygiene.py [--records N] [--runs N]
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

from stmails.db.engine import make_engine, session_factory
from stmails.db.models import Base
from stmails.services.content_check import check_content
from stmails.services.dmarc_reports import read_report, store


def newsletter() -> tuple[str, str]:
    paragraphs = []
    for i in range(60):
        words = " ".join(f"word{i}x{j}" for j in range(33))
        paragraphs.append(f'<p>{words} <a href="https://example.org/a/{i}">article {i}</a></p>')
    html = "<html><body>" + "".join(paragraphs) + "</body></html>"
    text = " ".join(f"word{i}" for i in range(2000))
    return html, text


def aggregate_xml(records: int) -> bytes:
    rows = []
    for i in range(records):
        ip = f"198.51.{(i >> 8) & 255}.{i & 255}"
        rows.append(
            f"<record><row><source_ip>{ip}</source_ip><count>{i % 50 + 1}</count>"
            "<policy_evaluated><disposition>none</disposition><dkim>pass</dkim>"
            f"<spf>{'pass' if i % 3 else 'fail'}</spf></policy_evaluated></row>"
            "<identifiers><header_from>example.org</header_from></identifiers>"
            "<auth_results><dkim><domain>example.org</domain><selector>s1</selector>"
            "<result>pass</result></dkim><spf><domain>example.org</domain><result>pass</result>"
            "</spf></auth_results></record>"
        )
    return (
        "<?xml version='1.0'?><feedback><report_metadata><org_name>bench.example</org_name>"
        "<email>r@bench.example</email><report_id>bench-1</report_id><date_range>"
        "<begin>1793491200</begin><end>1793577599</end></date_range></report_metadata>"
        "<policy_published><domain>example.org</domain><p>none</p></policy_published>"
        + "".join(rows)
        + "</feedback>"
    ).encode()


def median_seconds(work: object, runs: int) -> float:
    assert callable(work)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, cpus: {os.cpu_count()}")

    html, text = newsletter()

    def tokenize() -> None:
        reader = HTMLParser()
        reader.feed(html)
        reader.close()

    check = median_seconds(lambda: check_content("October news", html, text), args.runs)
    baseline = median_seconds(tokenize, args.runs)
    print(
        f"content check: {check * 1000:.2f} ms per campaign ({len(html):,} chars of HTML); "
        f"HTML tokenizer alone {baseline * 1000:.2f} ms; ratio {check / baseline:.2f}"
    )

    xml = aggregate_xml(args.records)
    packed = gzip.compress(xml)
    started = time.perf_counter()
    report = read_report(packed)
    read_time = time.perf_counter() - started
    started = time.perf_counter()
    ElementTree.fromstring(xml)
    plain = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        Base.metadata.create_all(engine)
        with session_factory(engine)() as session:
            started = time.perf_counter()
            store(session, report)
            session.commit()
            store_time = time.perf_counter() - started
        engine.dispose()
    print(
        f"DMARC report: {args.records:,} records, {len(xml) / 1e6:.1f} MB of XML "
        f"({len(packed) / 1e3:.0f} kB gzip): read {read_time:.2f} s "
        f"({args.records / read_time:,.0f} records/s), stored in {store_time:.2f} s (SQLite); "
        f"ElementTree.fromstring alone {plain:.2f} s; read/fromstring ratio "
        f"{read_time / plain:.2f}"
    )


if __name__ == "__main__":
    main()
