"""The content risk check: what in a message's subject and bodies tends to send it to spam.

`check_content(subject, html, text, unsubscribe_url=...)` is pure (no I/O, no database): it
looks at the message as it would be sent and returns a `ContentReport`, a score and one
`Finding` per problem. `check_campaign(session, campaign, config)` renders a campaign for a
sample subscriber through the preview path (`services.sending.campaigns.render_preview`) and
checks that.

Each finding has a stable code (the message id), a severity, its share of the score, the
values its message names, and the message in English and Chinese (`MESSAGES`: one table, ready
for the Babel catalogs). Scores follow the documents' checker: above 30 the risk is high, above
15 moderate, else low.

Budgets: each part is scanned up to `MAX_SCAN_CHARS`; the HTML goes through the standard
library's linear HTML tokenizer, and every regular expression here is linear (literal
alternations, single character classes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from stmails.db.models import Campaign
from stmails.services.sending.campaigns import CampaignError, render_preview
from stmails.services.sending.config import SendingConfig

__all__ = [
    "LINK_SHORTENERS",
    "MESSAGES",
    "SPAM_PHRASES",
    "ContentReport",
    "Finding",
    "check_campaign",
    "check_content",
]

# Text beyond this many characters of a part is not scanned (the report says so).
MAX_SCAN_CHARS = 1_000_000
LOCALES = ("en", "zh_CN")
SEVERITIES = ("low", "medium", "high")

# Phrases spam filters weigh (the documents' list, and its Chinese counterparts).
SPAM_PHRASES = (
    "act now", "limited time", "click here", "free gift", "no obligation", "winner",
    "congratulations", "urgent", "100% free", "risk free", "risk-free", "cash bonus",
    "buy now", "order now", "once in a lifetime", "you have been selected", "guaranteed",
    "立即行动", "限时", "点击这里", "免费赠品", "无任何义务", "中奖", "恭喜", "紧急", "稳赚",
)  # fmt: skip

# Public URL shorteners: filters distrust them because they hide the destination.
LINK_SHORTENERS = frozenset(
    {
        "bit.ly", "bitly.com", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly",
        "rebrand.ly", "cutt.ly", "shorturl.at", "t.ly", "tiny.cc", "rb.gy", "bl.ink", "s.id",
        "v.gd", "lnkd.in", "t.cn", "url.cn", "dwz.cn", "suo.im", "tinyurl.cn", "adf.ly",
        "shorte.st", "soo.gd", "clck.ru", "qr.ae",
    }
)  # fmt: skip

# Words of a link that lets the reader leave the list.
_UNSUBSCRIBE_WORDS = ("unsubscribe", "opt-out", "opt out", "退订", "取消订阅", "退阅")

# The message of each finding code in each locale; `%(name)s` is a value (Python's and Babel's
# placeholder syntax, so the strings move to the catalogs unchanged).
MESSAGES: dict[str, dict[str, str]] = {
    "subject_capitals": {
        "en": "The subject has words in capitals (%(words)s): it reads as shouting.",
        "zh_CN": "主题中有全大写的词(%(words)s),显得像在喊叫。",
    },
    "subject_exclamations": {
        "en": "The subject has repeated exclamation marks.",
        "zh_CN": "主题中有连续的感叹号。",
    },
    "body_exclamations": {
        "en": "The body has repeated exclamation marks (%(count)s times).",
        "zh_CN": "正文中有连续的感叹号(%(count)s 处)。",
    },
    "spam_phrase": {
        "en": 'Spam phrase: "%(phrase)s".',
        "zh_CN": "垃圾邮件常用语:“%(phrase)s”。",
    },
    "link_ratio": {
        "en": "High link-to-text ratio: %(links)s links for %(words)s words.",
        "zh_CN": "链接与文字比例过高:%(words)s 个词中有 %(links)s 个链接。",
    },
    "plain_text_missing": {
        "en": "The message has no plain-text part (or it is empty).",
        "zh_CN": "邮件没有纯文本部分(或纯文本为空)。",
    },
    "image_only": {
        "en": "The message is images with almost no text (%(images)s images, %(words)s words).",
        "zh_CN": "邮件几乎只有图片,没有文字(%(images)s 张图片,%(words)s 个词)。",
    },
    "link_shortener": {
        "en": "Links go through URL shorteners (%(hosts)s): show the real destination.",
        "zh_CN": "链接使用了短网址服务(%(hosts)s):请直接使用真实地址。",
    },
    "mismatched_link": {
        "en": 'A link reads "%(text)s" but goes to %(target)s.',
        "zh_CN": "链接文字显示为“%(text)s”,实际却指向 %(target)s。",
    },
    "missing_unsubscribe": {
        "en": "The body has no unsubscribe link (add {{ UnsubscribeURL }}).",
        "zh_CN": "正文中没有退订链接(请加入 {{ UnsubscribeURL }})。",
    },
    "render_failed": {
        "en": "The message could not be rendered for the check: %(error)s",
        "zh_CN": "无法渲染邮件以进行检查:%(error)s",
    },
    "truncated": {
        "en": "The message is larger than the check reads; only its beginning was checked.",
        "zh_CN": "邮件超出检查范围,只检查了开头部分。",
    },
}
# The overall verdict, by level.
LEVEL_MESSAGES: dict[str, dict[str, str]] = {
    "low": {"en": "Low risk.", "zh_CN": "风险低。"},
    "moderate": {
        "en": "Moderate risk: review the flagged items.",
        "zh_CN": "中等风险:请检查标出的问题。",
    },
    "high": {"en": "High risk: revise the content.", "zh_CN": "高风险:请修改内容。"},
}
_RULES: dict[str, tuple[str, int]] = {
    "subject_capitals": ("medium", 10),
    "subject_exclamations": ("medium", 10),
    "body_exclamations": ("low", 5),
    "spam_phrase": ("low", 5),
    "link_ratio": ("high", 15),
    "plain_text_missing": ("medium", 10),
    "image_only": ("high", 20),
    "link_shortener": ("medium", 10),
    "mismatched_link": ("high", 15),
    "missing_unsubscribe": ("high", 20),
    "render_failed": ("high", 0),
    "truncated": ("low", 0),
}
HIGH_ABOVE = 30
MODERATE_ABOVE = 15
# The documents' link ratio: more than one link per 50 words.
WORDS_PER_LINK = 50
# Fewer words than this beside at least one image: an image-only message.
IMAGE_ONLY_WORDS = 25
# Capitalised words this long or longer count as shouting (the documents' [A-Z]{4,}).
SHOUT_LENGTH = 4

_EXCLAMATIONS = re.compile(r"[!！]{2,}")
_URL = re.compile(r"https?://[^\s<>\"')\]]+", re.IGNORECASE)
_WORD = re.compile(r"\w+")
_HAN = re.compile(r"[\u3400-\u9fff]")
_HOSTNAME = re.compile(r"[a-z0-9.-]+")


@dataclass(frozen=True)
class Finding:
    """One problem the check found: `code` is the stable message id, `params` the values the
    message names."""

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        """`low`, `medium` or `high`."""
        return _RULES[self.code][0]

    @property
    def score(self) -> int:
        """What this finding adds to the report's score."""
        return _RULES[self.code][1]

    def message(self, locale: str = "en") -> str:
        """The message in `locale` (`en` or `zh_CN`) with its values filled in."""
        return MESSAGES[self.code][locale] % dict(self.params)

    def to_dict(self) -> dict[str, Any]:
        """The finding as the API returns it: code, severity, score, params and messages."""
        return {
            "code": self.code,
            "severity": self.severity,
            "score": self.score,
            "params": dict(self.params),
            "message": {locale: self.message(locale) for locale in LOCALES},
        }


@dataclass(frozen=True)
class ContentReport:
    """The score, its level (`low`, `moderate`, `high`) and the findings, worst first."""

    score: int
    findings: tuple[Finding, ...]

    @property
    def level(self) -> str:
        """`high` above 30 points, `moderate` above 15, else `low`."""
        if self.score > HIGH_ABOVE:
            return "high"
        return "moderate" if self.score > MODERATE_ABOVE else "low"

    def to_dict(self) -> dict[str, Any]:
        """The report as the API returns it."""
        return {
            "score": self.score,
            "level": self.level,
            "summary": dict(LEVEL_MESSAGES[self.level]),
            "findings": [f.to_dict() for f in self.findings],
        }


def _report(findings: Iterable[Finding]) -> ContentReport:
    order = {severity: index for index, severity in enumerate(reversed(SEVERITIES))}
    ranked = sorted(findings, key=lambda f: (order[f.severity], -f.score))
    return ContentReport(sum(f.score for f in ranked), tuple(ranked))


@dataclass
class _Link:
    href: str
    text: str = ""


class _Reader(HTMLParser):
    """Collects the visible text, the links (target and text) and the images of an HTML body."""

    _HIDDEN = frozenset({"script", "style", "head", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.links: list[_Link] = []
        self.images = 0
        self._hidden = 0
        self._open_link: _Link | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag == "a":
            href = next((v for k, v in attrs if k == "href" and v), None)
            self._open_link = _Link(href.strip()) if href else None
            if self._open_link is not None:
                self.links.append(self._open_link)
        elif tag == "img":
            self.images += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "a":
            self._open_link = None

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        self.text.append(data)
        if self._open_link is not None:
            self._open_link.text += data


def _words(text: str) -> int:
    """Words in `text`: runs of letters and digits, and each Han character (Chinese has no
    spaces between words; a character is the closest count)."""
    han = len(_HAN.findall(text))
    return len(_WORD.findall(_HAN.sub(" ", text))) + han


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.lower().removeprefix("www.")


def _same_site(first: str, second: str) -> bool:
    return first == second or first.endswith("." + second) or second.endswith("." + first)


def check_content(
    subject: str,
    html: str | None,
    text: str | None,
    *,
    unsubscribe_url: str | None = None,
) -> ContentReport:
    """The content risk report of one message as it would be sent.

    `html` and `text` are the two bodies (None when the message has no such part);
    `unsubscribe_url` is the recipient's unsubscribe link, which counts as the unsubscribe link
    wherever it appears (a link whose text or target mentions unsubscribing counts too).
    """
    findings: list[Finding] = []
    truncated = any(len(part or "") > MAX_SCAN_CHARS for part in (subject, html, text))
    subject = subject[:MAX_SCAN_CHARS]
    html = html[:MAX_SCAN_CHARS] if html is not None else None
    text = text[:MAX_SCAN_CHARS] if text is not None else None
    if truncated:
        findings.append(Finding("truncated"))

    reader = _Reader()
    if html is not None:
        reader.feed(html)
        reader.close()
    visible = " ".join(reader.text) if html is not None else (text or "")
    words = _words(visible)

    findings.extend(_subject_findings(subject))
    exclamations = len(_EXCLAMATIONS.findall(visible))
    if exclamations:
        findings.append(Finding("body_exclamations", {"count": exclamations}))
    phrases = _spam_phrases(f"{subject}\n{visible}")
    findings.extend(Finding("spam_phrase", {"phrase": p}) for p in phrases)

    targets = [link.href for link in reader.links] if html is not None else []
    if html is None:
        targets = [m.group(0) for m in _URL.finditer(text or "")]
    web_targets = [t for t in targets if t.lower().startswith(("http://", "https://"))]
    if web_targets and len(web_targets) > words / WORDS_PER_LINK:
        findings.append(Finding("link_ratio", {"links": len(web_targets), "words": words}))
    if html is not None and not (text or "").strip():
        findings.append(Finding("plain_text_missing"))
    if reader.images and words < IMAGE_ONLY_WORDS:
        findings.append(Finding("image_only", {"images": reader.images, "words": words}))
    shorteners = sorted({h for h in map(_host, web_targets) if h in LINK_SHORTENERS})
    if shorteners:
        findings.append(Finding("link_shortener", {"hosts": ", ".join(shorteners)}))
    findings.extend(_mismatched(reader.links))
    if not _has_unsubscribe(html, text, reader.links, unsubscribe_url):
        findings.append(Finding("missing_unsubscribe"))
    return _report(findings)


def _is_boundary(text: str, index: int) -> bool:
    """Whether position `index` of `text` is outside a word (or outside the text)."""
    return not 0 <= index < len(text) or not (text[index].isalnum() or text[index] == "_")


def _spam_phrases(text: str) -> list[str]:
    """The spam phrases in `text`, in the order of SPAM_PHRASES: English ones as whole words
    (any case), Chinese ones anywhere. One substring search per phrase (linear, in C) rather
    than a regular expression with an alternative per phrase at every position."""
    lowered = text.lower()
    found = []
    for phrase in SPAM_PHRASES:
        start = lowered.find(phrase)
        while start >= 0:
            end = start + len(phrase)
            if not phrase.isascii() or (
                _is_boundary(lowered, start - 1) and _is_boundary(lowered, end)
            ):
                found.append(phrase)
                break
            start = lowered.find(phrase, start + 1)
    return found


def _subject_findings(subject: str) -> list[Finding]:
    findings = []
    shouted = [
        w for w in dict.fromkeys(_WORD.findall(subject)) if len(w) >= SHOUT_LENGTH and w.isupper()
    ]
    if shouted:
        findings.append(Finding("subject_capitals", {"words": ", ".join(shouted[:5])}))
    if _EXCLAMATIONS.search(subject):
        findings.append(Finding("subject_exclamations"))
    return findings


def _mismatched(links: Iterable[_Link]) -> list[Finding]:
    """Links whose text names one site while the target is another (phishing's pattern)."""
    found: list[Finding] = []
    for link in links:
        shown = " ".join(link.text.split())
        shown_host = _shown_host(shown)
        target = _host(link.href)
        if shown_host is None or not target:
            continue
        if not _same_site(shown_host, target):
            found.append(Finding("mismatched_link", {"text": shown[:100], "target": target}))
    return found[:10]


def _shown_host(shown: str) -> str | None:
    """The host name a link's text displays (`www.example.com`, `https://example.com/x`), or
    None when the text is not a bare address."""
    if not shown or " " in shown or len(shown) > 300:
        return None
    lowered = shown.lower()
    for scheme in ("https://", "http://"):
        lowered = lowered.removeprefix(scheme)
    for stop in "/:?#":
        lowered = lowered.split(stop, 1)[0]
    labels = lowered.split(".")
    if len(labels) < 2 or not _HOSTNAME.fullmatch(lowered) or "" in labels:
        return None
    if not (labels[-1].isalpha() and len(labels[-1]) >= 2):
        return None
    return lowered.removeprefix("www.")


def _has_unsubscribe(
    html: str | None, text: str | None, links: Iterable[_Link], unsubscribe_url: str | None
) -> bool:
    if unsubscribe_url and any(unsubscribe_url in (part or "") for part in (html, text)):
        return True
    for link in links:
        words = f"{link.text} {link.href}".lower()
        if any(word in words for word in _UNSUBSCRIBE_WORDS):
            return True
    return False


def check_campaign(
    session: Session,
    campaign: Campaign,
    config: SendingConfig,
    overrides: Mapping[str, Any] | None = None,
) -> ContentReport:
    """The content report of `campaign` as a sample subscriber would receive it.

    `overrides` (subject, body, altbody, content_type, template_id) check unsaved content on a
    detached copy; nothing is written. A campaign that does not render gets one high
    `render_failed` finding instead of an error.
    """
    if overrides:
        session.expunge(campaign)
        for name, value in overrides.items():
            setattr(campaign, name, value)
    try:
        rendered, unsubscribe = render_preview(session, campaign, None, config)
    except CampaignError as exc:
        return _report([Finding("render_failed", {"error": str(exc)[:500]})])
    return check_content(
        rendered.subject, rendered.html, rendered.text, unsubscribe_url=unsubscribe
    )
