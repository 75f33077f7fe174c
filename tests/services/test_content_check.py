"""The content risk check as a pure function: each finding fires on its pattern and only there."""

from __future__ import annotations

import time

import pytest

from stmails.services.content_check import (
    LINK_SHORTENERS,
    MAX_SCAN_CHARS,
    MESSAGES,
    SPAM_PHRASES,
    ContentReport,
    Finding,
    check_content,
)

UNSUBSCRIBE = "https://news.example.org/subscription/c/s"
# A clean newsletter: enough words, a text part, an unsubscribe link; nothing to find.
WORDS = " ".join(f"word{i}" for i in range(120))
CLEAN_HTML = (
    f"<html><head><title>NEWS!!</title><style>p{{}}</style></head><body><p>{WORDS}</p>"
    f'<p><a href="https://example.org/articles/1">Read the article</a></p>'
    f'<p><a href="{UNSUBSCRIBE}">Unsubscribe</a></p></body></html>'
)
CLEAN_TEXT = f"{WORDS}\nRead the article: https://example.org/articles/1\n{UNSUBSCRIBE}"


def codes(report: ContentReport) -> list[str]:
    return [f.code for f in report.findings]


def clean(subject: str = "Our October news", **parts: str | None) -> ContentReport:
    html = parts.get("html", CLEAN_HTML)
    text = parts.get("text", CLEAN_TEXT)
    return check_content(subject, html, text, unsubscribe_url=UNSUBSCRIBE)


def test_a_clean_message_has_no_findings_and_low_risk() -> None:
    report = clean()
    assert report.findings == ()
    assert (report.score, report.level) == (0, "low")
    # Hidden elements (the title's "!!") are not the body.
    assert report.to_dict()["summary"] == {"en": "Low risk.", "zh_CN": "风险低。"}


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("FREE offer inside", ["subject_capitals"]),
        ("Big news!!", ["subject_exclamations"]),
        ("大促销！！", ["subject_exclamations"]),
        ("Meet the new API at NASA", ["subject_capitals"]),
        ("Meet our new CEO", []),
        ("Hello!", []),
    ],
)
def test_subject_capitals_and_exclamations(subject: str, expected: list[str]) -> None:
    assert codes(clean(subject)) == expected


def test_spam_phrases_are_found_once_each_as_whole_words_in_subject_and_body() -> None:
    html = CLEAN_HTML.replace("word1 ", "Act NOW, limited time: a winner! 恭喜你中奖 ")
    report = clean("Act now", html=html)
    phrases = [f.params["phrase"] for f in report.findings if f.code == "spam_phrase"]
    assert sorted(phrases) == sorted(["act now", "limited time", "winner", "恭喜", "中奖"])
    assert report.score == 5 * len(phrases)
    # Inside another word it is not the phrase.
    assert codes(clean(html=CLEAN_HTML.replace("word1 ", "winners-circle awinner "))) == []


def test_body_exclamations_are_counted() -> None:
    html = CLEAN_HTML.replace("word1 ", "Wow!! Really!!! ")
    report = clean(html=html)
    assert codes(report) == ["body_exclamations"]
    assert report.findings[0].params == {"count": 2}


def test_the_link_ratio_counts_web_links_against_words() -> None:
    links = "".join(f'<a href="https://example.org/{i}">more</a> ' for i in range(4))
    html = CLEAN_HTML.replace(f"<p>{WORDS}</p>", f"<p>{' '.join(['w'] * 100)} {links}</p>")
    report = clean(html=html)
    assert "link_ratio" in codes(report)
    finding = next(f for f in report.findings if f.code == "link_ratio")
    assert finding.params["links"] == 6
    assert finding.severity == "high"
    # The same links in a long text are fine (one link per 50 words at most).
    long_html = html.replace("w " * 100, "w " * 400)
    assert "link_ratio" not in codes(clean(html=long_html))


def test_a_missing_or_empty_plain_text_part_is_reported() -> None:
    assert codes(clean(text="")) == ["plain_text_missing"]
    assert codes(clean(text=None)) == ["plain_text_missing"]
    # A plain-text message has no HTML part and needs none.
    assert codes(check_content("Hi", None, CLEAN_TEXT, unsubscribe_url=UNSUBSCRIBE)) == []


def test_image_only_mail_is_reported() -> None:
    html = f'<p><img src="https://example.org/a.png"><a href="{UNSUBSCRIBE}">Unsubscribe</a></p>'
    report = clean(html=html, text="Unsubscribe " + UNSUBSCRIBE)
    assert "image_only" in codes(report)
    assert report.findings[0].code == "image_only"  # the worst first
    # An image in a real text is fine.
    with_text = CLEAN_HTML.replace("<p>word0", '<p><img src="https://example.org/a.png">word0')
    assert codes(clean(html=with_text)) == []


def test_link_shorteners_are_named() -> None:
    html = CLEAN_HTML.replace("https://example.org/articles/1", "https://bit.ly/3abc")
    report = clean(html=html)
    assert codes(report) == ["link_shortener"]
    assert report.findings[0].params == {"hosts": "bit.ly"}
    assert report.findings[0].message("zh_CN").startswith("链接使用了短网址服务(bit.ly)")
    assert {"bit.ly", "tinyurl.com", "t.cn"} <= LINK_SHORTENERS


@pytest.mark.parametrize(
    ("text", "href", "mismatched"),
    [
        ("www.paypal.com", "https://evil.example/login", True),
        ("https://bank.example/account", "https://bank.example.evil.test/", True),
        ("example.org", "https://www.example.org/page", False),
        ("shop.example.org", "https://example.org/", False),
        ("Read the article", "https://evil.example/", False),
        ("v1.2", "https://example.org/", False),
    ],
)
def test_a_link_whose_text_names_another_site_is_mismatched(
    text: str, href: str, mismatched: bool
) -> None:
    html = CLEAN_HTML.replace(
        '<a href="https://example.org/articles/1">Read the article</a>',
        f'<a href="{href}">{text}</a>',
    )
    report = clean(html=html)
    assert ("mismatched_link" in codes(report)) is mismatched
    if mismatched:
        finding = next(f for f in report.findings if f.code == "mismatched_link")
        assert finding.params["text"] == text


def test_the_unsubscribe_link_is_the_recipients_url_or_a_link_that_says_so() -> None:
    without = CLEAN_HTML.replace(f'<p><a href="{UNSUBSCRIBE}">Unsubscribe</a></p>', "")
    text = CLEAN_TEXT.replace(UNSUBSCRIBE, "")
    assert codes(clean(html=without, text=text)) == ["missing_unsubscribe"]
    own_page = without.replace("</body>", '<a href="https://example.org/prefs">退订</a></body>')
    assert codes(clean(html=own_page, text=text)) == []
    # The recipient's URL anywhere in the message counts (a plain-text message has no anchors).
    assert codes(check_content("Hi", None, CLEAN_TEXT, unsubscribe_url=UNSUBSCRIBE)) == []
    assert codes(check_content("Hi", None, text, unsubscribe_url=UNSUBSCRIBE)) == [
        "missing_unsubscribe"
    ]


def test_scores_add_up_to_levels() -> None:
    assert ContentReport(15, ()).level == "low"
    assert ContentReport(16, ()).level == "moderate"
    assert ContentReport(31, ()).level == "high"
    bad = check_content(
        "FREE GIFT!!",
        '<img src="https://bit.ly/x"><a href="https://bit.ly/y">www.bank.example</a>',
        "",
        unsubscribe_url=UNSUBSCRIBE,
    )
    assert bad.level == "high"
    assert bad.score == sum(f.score for f in bad.findings)
    severities = [f.severity for f in bad.findings]
    assert severities == sorted(severities, key=["high", "medium", "low"].index)


def test_every_finding_has_both_languages_with_the_same_values() -> None:
    for code, messages in MESSAGES.items():
        assert set(messages) == {"en", "zh_CN"}, code
        params = {name: "VALUE" for name in ("words", "count", "phrase", "links", "images",
                                              "hosts", "text", "target", "error")}  # fmt: skip
        finding = Finding(code, params)
        english, chinese = finding.message("en"), finding.message("zh_CN")
        assert english.count("VALUE") == chinese.count("VALUE"), code
        assert finding.to_dict()["message"] == {"en": english, "zh_CN": chinese}
    assert "act now" in SPAM_PHRASES


def test_hostile_input_is_bounded_and_reported_as_truncated() -> None:
    hostile = "<a href='" + "x" * 200_000 + "'>" + "<b>!!" * 300_000 + "A" * 10
    started = time.perf_counter()
    report = check_content("S" * (MAX_SCAN_CHARS + 10), hostile, "!" * 100, unsubscribe_url="")
    # Generous for a loaded shared machine; an unbounded scan would take far longer.
    assert time.perf_counter() - started < 20
    assert "truncated" in codes(report)
    assert "subject_capitals" in codes(report)
