"""The common functions of Sprig (the function library listmonk's templates get), for templates.

listmonk templates call them Go-style (`{{ .Subscriber.Name | default "friend" | upper }}`,
`{{ trunc 20 .Campaign.Subject }}`, `{{ date "2006-01-02" .Subscriber.CreatedAt }}`); the Go
translation in `templates` turns those into calls of the functions here, with the same argument
order (a piped value is the last argument). The behaviour follows Sprig's documentation: string,
default, number, list, dict, date and encoding functions. Functions that would read the
environment, files or the network (`env`, `expandenv`, `getHostByName`) are left out, and every
function that can make a large value charges the render budget before it makes it.

Numbers are Go's int64 where Sprig's are: a result out of that range is an error, not a huge
integer.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote_plus

from markupsafe import escape

from stmails.services.sending.template_budget import current

INT64 = 2**63
# Go's reference-time layout elements, longest first (so "2006" is not read as "20" + "06").
_GO_LAYOUT = (
    ("2006", "%Y"),
    ("January", "%B"),
    ("Jan", "%b"),
    ("Monday", "%A"),
    ("Mon", "%a"),
    ("MST", "%Z"),
    ("-0700", "%z"),
    ("01", "%m"),
    ("02", "%d"),
    ("15", "%H"),
    ("03", "%I"),
    ("04", "%M"),
    ("05", "%S"),
    ("PM", "%p"),
    ("06", "%y"),
    ("2", "%-d"),
    ("1", "%-m"),
    ("3", "%-I"),
)
_WORDS = re.compile(r"[A-Za-z0-9]+")


class SprigError(ValueError):
    """A function was called with values it cannot take (reported as a template error)."""


def _charge(chars: int) -> None:
    current().allocate(max(0, chars))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise SprigError("not a finite number")
        result = int(value)
    else:
        text = _text(value).strip()
        if len(text) > 20:
            raise SprigError("number out of range")
        try:
            result = int(float(text)) if "." in text else int(text or "0")
        except ValueError:
            return 0
    return _in_range(result)


def _in_range(value: int) -> int:
    if not -INT64 <= value < INT64:
        raise SprigError("number out of range")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(_text(value).strip() or "0")
    except ValueError:
        return 0.0


def _empty(value: Any) -> bool:
    """Sprig's emptiness: nil, false, 0, "" and empty collections."""
    if value is None or value is False:
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0
    if isinstance(value, str | bytes | Mapping | list | tuple | set):
        return len(value) == 0
    return not bool(value)


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes | Mapping):
        raise SprigError("expected a list")
    items = list(value)
    _charge(len(items))
    return items


# --- strings -----------------------------------------------------------------------------


def repeat(count: Any, value: Any) -> str:
    text, times = _text(value), _int(count)
    if times <= 0:
        return ""
    _charge(len(text) * times)
    return text * times


def substr(start: Any, end: Any, value: Any) -> str:
    text = _text(value)
    first, last = _int(start), _int(end)
    if first < 0:
        first = 0
    if last < 0 or last > len(text):
        last = len(text)
    return text[first:last] if first <= last else ""


def trunc(length: Any, value: Any) -> str:
    text, n = _text(value), _int(length)
    if n >= 0:
        return text[:n]
    return text[max(0, len(text) + n) :]


def abbrev(width: Any, value: Any) -> str:
    text, n = _text(value), _int(width)
    if n < 4 or len(text) <= n:
        return text
    return text[: n - 3] + "..."


def replace(old: Any, new: Any, value: Any) -> str:
    text, before, after = _text(value), _text(old), _text(new)
    if before:
        _charge(len(text) + text.count(before) * max(0, len(after) - len(before)))
    else:
        _charge(len(text) + (len(text) + 1) * len(after))
    return text.replace(before, after)


def cat(*values: Any) -> str:
    parts = [_text(v) for v in values if v is not None]
    _charge(sum(len(p) + 1 for p in parts))
    return " ".join(parts)


def quote(*values: Any) -> str:
    parts = [json.dumps(_text(v), ensure_ascii=False) for v in values if v is not None]
    _charge(sum(len(p) + 1 for p in parts))
    return " ".join(parts)


def squote(*values: Any) -> str:
    parts = [f"'{_text(v)}'" for v in values if v is not None]
    _charge(sum(len(p) + 1 for p in parts))
    return " ".join(parts)


def initials(value: Any) -> str:
    return "".join(word[0] for word in _text(value).split())


def _words(value: Any) -> list[str]:
    return _WORDS.findall(_text(value))


def snakecase(value: Any) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", _text(value))
    return "_".join(w.lower() for w in _WORDS.findall(spaced))


def kebabcase(value: Any) -> str:
    return snakecase(value).replace("_", "-")


def camelcase(value: Any) -> str:
    return "".join(w[:1].upper() + w[1:] for w in _words(value))


def split_list(separator: Any, value: Any) -> list[str]:
    text = _text(value)
    sep = _text(separator)
    parts = text.split(sep) if sep else list(text)
    _charge(len(parts))
    return parts


def join(separator: Any, values: Any) -> str:
    if isinstance(values, str):
        return values
    parts = [_text(v) for v in _items(values)]
    sep = _text(separator)
    _charge(sum(len(p) for p in parts) + len(sep) * max(0, len(parts) - 1))
    return sep.join(parts)


def sort_alpha(values: Any) -> list[str]:
    return sorted(_text(v) for v in _items(values))


# --- defaults, flow ------------------------------------------------------------------------


def default(fallback: Any, value: Any = None) -> Any:
    return fallback if _empty(value) else value


def coalesce(*values: Any) -> Any:
    return next((v for v in values if not _empty(v)), None)


def ternary(when_true: Any, when_false: Any, condition: Any) -> Any:
    return when_true if condition else when_false


def to_json(value: Any) -> str:
    _charge(current().measure(value))
    try:
        return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise SprigError(f"toJson: {exc}") from None


# --- numbers -------------------------------------------------------------------------------


def add(*values: Any) -> int:
    return _in_range(sum(_int(v) for v in values))


def sub(a: Any, b: Any) -> int:
    return _in_range(_int(a) - _int(b))


def mul(*values: Any) -> int:
    result = 1
    for value in values:
        result = _in_range(result * _int(value))
    return result


def div(a: Any, b: Any) -> int:
    divisor = _int(b)
    if divisor == 0:
        raise SprigError("division by zero")
    quotient = abs(_int(a)) // abs(divisor)
    return quotient if (_int(a) >= 0) == (divisor > 0) else -quotient


def mod(a: Any, b: Any) -> int:
    divisor = _int(b)
    if divisor == 0:
        raise SprigError("division by zero")
    return int(math.fmod(_int(a), divisor))


def maximum(first: Any, *rest: Any) -> int:
    return max(_int(v) for v in (first, *rest))


def minimum(first: Any, *rest: Any) -> int:
    return min(_int(v) for v in (first, *rest))


def round_to(value: Any, places: Any = 0) -> float:
    digits = max(0, min(_int(places), 15))
    return round(_number(value) + 0.0, digits)


# --- lists and dicts -----------------------------------------------------------------------


def make_list(*values: Any) -> list[Any]:
    _charge(len(values))
    return list(values)


def first(values: Any) -> Any:
    items = _items(values)
    return items[0] if items else None


def last(values: Any) -> Any:
    items = _items(values)
    return items[-1] if items else None


def rest(values: Any) -> list[Any]:
    return _items(values)[1:]


def initial(values: Any) -> list[Any]:
    return _items(values)[:-1]


def append(values: Any, value: Any) -> list[Any]:
    return [*_items(values), value]


def prepend(values: Any, value: Any) -> list[Any]:
    return [value, *_items(values)]


def uniq(values: Any) -> list[Any]:
    out: list[Any] = []
    for item in _items(values):
        if item not in out:
            out.append(item)
    return out


def has(needle: Any, values: Any) -> bool:
    return needle in _items(values)


def compact(values: Any) -> list[Any]:
    return [v for v in _items(values) if not _empty(v)]


def reverse(values: Any) -> list[Any]:
    return list(reversed(_items(values)))


def make_dict(*pairs: Any) -> dict[str, Any]:
    _charge(len(pairs))
    return {
        _text(pairs[i]): pairs[i + 1] if i + 1 < len(pairs) else "" for i in range(0, len(pairs), 2)
    }


def get(mapping: Any, key: Any) -> Any:
    if not isinstance(mapping, Mapping):
        raise SprigError("get: expected a dict")
    return mapping.get(_text(key), "")


def has_key(mapping: Any, key: Any) -> bool:
    return isinstance(mapping, Mapping) and _text(key) in mapping


def keys(*mappings: Any) -> list[str]:
    out: list[str] = []
    for mapping in mappings:
        if not isinstance(mapping, Mapping):
            raise SprigError("keys: expected a dict")
        out.extend(_text(k) for k in mapping)
    _charge(len(out))
    return out


def values(mapping: Any) -> list[Any]:
    if not isinstance(mapping, Mapping):
        raise SprigError("values: expected a dict")
    _charge(len(mapping))
    return list(mapping.values())


# --- dates ---------------------------------------------------------------------------------


def go_layout(layout: str) -> str:
    """A Go reference-time layout (`2006-01-02 15:04`) as a strftime format."""
    out: list[str] = []
    index = 0
    while index < len(layout):
        for go, py in _GO_LAYOUT:
            if layout.startswith(go, index):
                out.append(py)
                index += len(go)
                break
        else:
            char = layout[index]
            out.append("%%" if char == "%" else char)
            index += 1
    return "".join(out)


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    text = _text(value).strip()
    if not text:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SprigError(f"not a date: {text[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


def date_format(layout: Any, value: Any = None) -> str:
    text = _text(layout)
    if len(text) > 100:
        raise SprigError("date layout too long")
    return _moment(value).strftime(go_layout(text))


def to_date(layout: Any, value: Any) -> datetime:
    try:
        return datetime.strptime(_text(value), go_layout(_text(layout))).replace(tzinfo=UTC)
    except ValueError:
        raise SprigError(f"toDate: {_text(value)[:40]!r} does not match the layout") from None


def html_date(value: Any) -> str:
    return _moment(value).strftime("%Y-%m-%d")


def unix_epoch(value: Any) -> str:
    return str(int(_moment(value).timestamp()))


# --- encoding ------------------------------------------------------------------------------


def b64enc(value: Any) -> str:
    data = _text(value).encode()
    _charge(len(data) * 4 // 3 + 4)
    return base64.b64encode(data).decode("ascii")


def b64dec(value: Any) -> str:
    try:
        return base64.b64decode(_text(value), validate=True).decode("utf-8", "replace")
    except ValueError:
        raise SprigError("b64dec: not base64") from None


def urlquery(*values: Any) -> str:
    text = "".join(_text(v) for v in values)
    _charge(len(text) * 3)
    return quote_plus(text)


def html(*values: Any) -> str:
    return str(escape("".join(_text(v) for v in values)))


def _str1(function: Callable[[str], Any]) -> Callable[[Any], Any]:
    def call(value: Any) -> Any:
        return function(_text(value))

    return call


def _str2(function: Callable[[str, str], Any]) -> Callable[[Any, Any], Any]:
    def call(argument: Any, value: Any) -> Any:
        return function(_text(argument), _text(value))

    return call


FUNCTIONS: dict[str, Callable[..., Any]] = {
    # strings
    "trim": _str1(str.strip),
    "trimAll": _str2(lambda cutset, s: s.strip(cutset)),
    "trimPrefix": _str2(lambda prefix, s: s.removeprefix(prefix)),
    "trimSuffix": _str2(lambda suffix, s: s.removesuffix(suffix)),
    "upper": _str1(str.upper),
    "lower": _str1(str.lower),
    "title": _str1(str.title),
    "untitle": _str1(lambda s: " ".join(w[:1].lower() + w[1:] for w in s.split(" "))),
    "repeat": repeat,
    "substr": substr,
    "nospace": _str1(lambda s: "".join(s.split())),
    "trunc": trunc,
    "abbrev": abbrev,
    "initials": initials,
    "contains": _str2(lambda part, s: part in s),
    "hasPrefix": _str2(lambda prefix, s: s.startswith(prefix)),
    "hasSuffix": _str2(lambda suffix, s: s.endswith(suffix)),
    "quote": quote,
    "squote": squote,
    "cat": cat,
    "replace": replace,
    "snakecase": snakecase,
    "camelcase": camelcase,
    "kebabcase": kebabcase,
    "toString": _text,
    "splitList": split_list,
    "join": join,
    "sortAlpha": sort_alpha,
    # defaults and flow
    "default": default,
    "empty": _empty,
    "coalesce": coalesce,
    "ternary": ternary,
    "toJson": to_json,
    # numbers
    "atoi": _int,
    "int": _int,
    "int64": _int,
    "float64": _number,
    "add": add,
    "add1": lambda value: add(value, 1),
    "sub": sub,
    "mul": mul,
    "div": div,
    "mod": mod,
    "max": maximum,
    "min": minimum,
    "floor": lambda value: float(math.floor(_number(value))),
    "ceil": lambda value: float(math.ceil(_number(value))),
    "round": round_to,
    # lists and dicts
    "list": make_list,
    "first": first,
    "last": last,
    "rest": rest,
    "initial": initial,
    "append": append,
    "prepend": prepend,
    "uniq": uniq,
    "has": has,
    "compact": compact,
    "reverse": reverse,
    "dict": make_dict,
    "get": get,
    "hasKey": has_key,
    "keys": keys,
    "values": values,
    # dates
    "now": now,
    "date": date_format,
    "toDate": to_date,
    "htmlDate": html_date,
    "unixEpoch": unix_epoch,
    # encoding
    "b64enc": b64enc,
    "b64dec": b64dec,
    "urlquery": urlquery,
    "html": html,
}
