"""The render budget of message templates: steps, characters and time, charged before the work.

A template is text that users with `templates:manage` or `campaigns:manage_all` write, rendered
per recipient in the sender and in the API. Jinja2's sandbox keeps it away from Python's
internals but not from the worker's CPU and memory: nested loops, `'x' * 50000000`, a string
doubled with `~` in a loop or a list that holds itself ten times and is then printed can each
take minutes or gigabytes. `BudgetedEnvironment` closes those doors cooperatively, in a way the
template cannot avoid, because every place where a template makes work runs through it:

- Every loop iteration, call (macros and methods included), operator and filter costs a step;
  a render has `RenderLimits.steps` of them and `RenderLimits.seconds` of wall time (checked
  every 64 steps).
- Every value a render makes (operators, `~`, filters, method calls, list and dict literals,
  printed expressions, the literal text of loop, macro and block bodies each time they run) is
  measured *before* it is made and charged to `RenderLimits.chars`; one value may not exceed
  `RenderLimits.value_chars`. Measuring a container walks it only up to what is left of the
  budget, and the walk is charged too, so measuring is bounded as well.
- Methods of strings are limited to ones that do not grow their text; builtin containers are
  immutable (Jinja2's `ImmutableSandboxedEnvironment`); `str.format`, `lipsum`, `urlize` and
  recursive loops are not available.

The budget of the render in progress lives in a context variable that `rendering` sets; code
run without one (Jinja2 folding constants while compiling) gets a fresh budget per operation,
so every single operation stays within `value_chars`.
"""

from __future__ import annotations

import functools
import operator
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, cast

from jinja2 import TemplateError, nodes, pass_context
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer
from markupsafe import Markup


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """What one render may spend."""

    # Loop iterations, calls, operators and filters.
    steps: int = 200_000
    # Characters made in all: values, concatenations, printed output, literal text re-emitted.
    chars: int = 32 * 1024 * 1024
    # Characters of one value (one string, or one container as text).
    value_chars: int = 4 * 1024 * 1024
    # Bits of one integer made by an operator.
    int_bits: int = 4096
    # Wall-clock seconds.
    seconds: float = 5.0
    # Items of a `range`.
    range_items: int = 100_000


DEFAULT_LIMITS = RenderLimits()


class RenderBudgetExceeded(TemplateError):
    """The render would spend more than its budget; the message says which part."""


class Budget:
    """What is left of one render's limits."""

    __slots__ = ("_clock", "chars", "deadline", "limits", "steps")

    def __init__(self, limits: RenderLimits | None = None) -> None:
        limits = limits or DEFAULT_LIMITS
        self.limits = limits
        self.steps = limits.steps
        self.chars = limits.chars
        self.deadline = time.monotonic() + limits.seconds
        self._clock = 0

    def step(self, count: int = 1) -> None:
        """Charges `count` steps; RenderBudgetExceeded when none are left or time is up."""
        self.steps -= count
        if self.steps < 0:
            raise RenderBudgetExceeded(
                f"the template takes more than {self.limits.steps} steps (loops, calls, filters)"
            )
        self._clock += count
        if self._clock >= 64:
            self._clock = 0
            if time.monotonic() > self.deadline:
                raise RenderBudgetExceeded(
                    f"the template takes longer than {self.limits.seconds:g} seconds to render"
                )

    def allocate(self, chars: int) -> None:
        """Charges a value of `chars` characters that is about to be made."""
        if chars > self.limits.value_chars:
            raise RenderBudgetExceeded(
                f"the template makes a value of more than {self.limits.value_chars} characters"
            )
        self.chars -= chars
        if self.chars < 0:
            raise RenderBudgetExceeded(
                f"the template makes more than {self.limits.chars} characters in all"
            )

    def measure(self, value: Any) -> int:
        """The length of `value` as text (containers walked, shared parts counted each time
        they appear), charged as `allocate` does; RenderBudgetExceeded past the limits."""
        kind = type(value)
        # The common cases first, without a walk: this runs for every printed value.
        if kind is str or kind is Markup:
            size = len(value)
        elif kind in _SCALARS:
            size = _SCALAR_CHARS
        else:
            cap = min(self.limits.value_chars, max(self.chars, 0))
            size = _text_size(value, cap)
        if size > self.limits.value_chars:
            self.allocate(size)
        self.chars -= size
        if self.chars < 0:
            self.allocate(0)
        return size


# Types whose text is short (numbers print at most a few dozen characters within int_bits).
_SCALARS = frozenset({int, float, bool, type(None)})
_SCALAR_CHARS = 24


def _text_size(value: Any, cap: int) -> int:
    """An upper estimate of len(str(value)), walking containers; stops a little past `cap`."""
    total = 0
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            # repr() inside a container adds quotes and may escape characters.
            total += len(item) + 2
        elif isinstance(item, bool | int | float | complex) or item is None:
            total += 24
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + 2 * len(item)
            pending.extend(item)
        elif isinstance(item, Namespace):
            # Its text shows its attributes.
            total += 16
            pending.append(dict(getattr(item, "_Namespace__attrs", {})))
        elif isinstance(item, range):
            total += 40
        else:
            # Other objects (functions, loop helpers, undefined values) print a short text.
            total += 64
        if total > cap:
            return total
    return total


_BUDGET: ContextVar[Budget | None] = ContextVar("stmails_render_budget", default=None)


def current() -> Budget:
    """The budget of the render in progress (a fresh one outside a render)."""
    budget = _BUDGET.get()
    return budget if budget is not None else Budget()


def start_render() -> Token[Budget | None]:
    """What `rendering()` does on entering, for the per-message render path (a generator-based
    context manager costs more than the rest of a small render's bookkeeping): a fresh budget
    of DEFAULT_LIMITS made current. Pass the token to `end_render` in a `finally`."""
    return _BUDGET.set(Budget())


def end_render(token: Token[Budget | None]) -> None:
    """Ends the render `start_render` began: the budget before it is current again."""
    _BUDGET.reset(token)


@contextmanager
def rendering(limits: RenderLimits | None = None) -> Iterator[Budget]:
    """Makes a fresh budget (of `limits`, default DEFAULT_LIMITS) the current one for the block
    (one render)."""
    budget = Budget(limits)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


# String methods that make at most a few times their string's size (others are unavailable).
SAFE_STR_METHODS = frozenset(
    {
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isdecimal",
        "isdigit",
        "islower",
        "isnumeric",
        "isspace",
        "istitle",
        "isupper",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "rfind",
        "rindex",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "striptags",
        "swapcase",
        "title",
        "unescape",
        "upper",
    }
)

_SEQUENCES = (str, list, tuple)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int_bits(bits: int, budget: Budget) -> None:
    if bits > budget.limits.int_bits:
        raise RenderBudgetExceeded(
            f"the template makes a number of more than {budget.limits.int_bits} bits"
        )


def _check_percent_format(text: str, budget: Budget) -> None:
    """Refuses `%` format specifications whose width or precision would make a huge text."""
    if text in _FORMATS_CHECKED:
        return
    _check_widths(text)
    if len(text) <= 200 and len(_FORMATS_CHECKED) < 1000:
        # Templates use a handful of formats, each on many recipients: remembered once checked.
        _FORMATS_CHECKED.add(text)


_FORMATS_CHECKED: set[str] = set()


def _check_widths(text: str) -> None:
    position = text.find("%")
    while position != -1:
        index = position + 1
        # Flags, then width and precision: digits, '*' or '.', read without a regex.
        number = 0
        while index < len(text) and text[index] in "#0- +*.0123456789":
            char = text[index]
            if char == "*":
                raise RenderBudgetExceeded("'*' widths are not available in templates")
            if char.isdigit():
                number = number * 10 + int(char)
                if number > 1000:
                    raise RenderBudgetExceeded("a format width or precision above 1000")
            else:
                number = 0
            index += 1
        position = text.find("%", index + 1)


def check_binop(budget: Budget, op: str, left: Any, right: Any) -> None:
    """Charges an operator before it runs: result size for sequences, bits for integers."""
    budget.step()
    if op == "*":
        if isinstance(left, _SEQUENCES) and _is_int(right):
            budget.allocate(budget.measure(left) * max(right, 0))
        elif isinstance(right, _SEQUENCES) and _is_int(left):
            budget.allocate(budget.measure(right) * max(left, 0))
        elif _is_int(left) and _is_int(right):
            _check_int_bits(left.bit_length() + right.bit_length(), budget)
    elif op == "**":
        if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
            _check_int_bits(left.bit_length() * right, budget)
    elif op in ("+", "-"):
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            budget.allocate(budget.measure(left) + budget.measure(right))
        elif _is_int(left) and _is_int(right):
            _check_int_bits(max(left.bit_length(), right.bit_length()) + 1, budget)
    elif op == "%" and isinstance(left, str):
        _check_percent_format(left, budget)
        budget.allocate(len(left) + budget.measure(right))


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    """A filter's argument given by position (after the value) or by name."""
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


# Filters that could make far more than their input, and what they would make.
def _center(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> None:
    width = _arg(args, kwargs, 0, "width", 80)
    budget.allocate(max(budget.measure(value), width if _is_int(width) else 0))


def _indent(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> None:
    text = str(value)
    width = _arg(args, kwargs, 0, "width", 4)
    per_line = len(width) if isinstance(width, str) else width if _is_int(width) else 0
    budget.allocate(len(text) + (text.count("\n") + 1) * max(per_line, 0))


def _replace(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> None:
    text = str(value)
    old = str(_arg(args, kwargs, 0, "old", ""))
    new = str(_arg(args, kwargs, 1, "new", ""))
    count = _arg(args, kwargs, 2, "count", None)
    budget.allocate(len(text))
    found = text.count(old) if old else len(text) + 1
    if _is_int(count) and count >= 0:
        found = min(found, count)
    budget.allocate(len(text) + found * max(len(new) - len(old), 0))


def _format(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> None:
    text = str(value)
    _check_percent_format(text, budget)
    size = len(text) + sum(budget.measure(arg) for arg in args)
    if kwargs:
        size += budget.measure(kwargs)
    budget.allocate(size)


def _wordwrap(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> None:
    # At worst every character ends a line, each followed by the wrap string.
    wrap = _arg(args, kwargs, 2, "wrapstring", None)
    text = str(value)
    budget.allocate(len(text) * (1 + len(wrap if isinstance(wrap, str) else "\n")))


def _batch(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> None:
    budget.measure(value)
    count = _arg(args, kwargs, 0, "linecount", 1)
    if _arg(args, kwargs, 1, "fill_with", None) is not None and _is_int(count):
        budget.allocate(max(count, 0))


def _slice(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> None:
    budget.measure(value)
    slices = _arg(args, kwargs, 0, "slices", 1)
    if _is_int(slices):
        budget.step(max(slices, 0))


def _join(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> None:
    # Only sized values are measured up front; a generator's items are measured as made.
    separator = str(_arg(args, kwargs, 0, "d", ""))
    if isinstance(value, list | tuple | set | frozenset | Mapping):
        budget.allocate(budget.measure(value) + len(value) * len(separator))


_GROWING: dict[str, Callable[..., None]] = {
    "center": _center,
    "indent": _indent,
    "replace": _replace,
    "format": _format,
    "wordwrap": _wordwrap,
    "batch": _batch,
    "slice": _slice,
    "join": _join,
}
# Filters that are not offered: regex-heavy (urlize) or whose output Jinja2 builds from
# iterating its own (unbounded) arguments.
_REMOVED_FILTERS = frozenset({"urlize"})


def _budgeted_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` (a Jinja2 filter) charged a step and its input's size before it runs, and its
    result's size after (a container result is references to measured values)."""
    passes = getattr(function, "jinja_pass_arg", None)
    growing = _GROWING.get(name)

    @functools.wraps(function)
    def budgeted(*args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        values = args[1:] if passes is not None else args
        if growing is not None:
            growing(budget, *values, **kwargs)
        elif values:
            budget.measure(values[0])
        result = function(*args, **kwargs)
        if isinstance(result, list | tuple | dict | set | str):
            budget.measure(result)
        return result

    return budgeted


# The filters the budget transform inserts into every template.
@pass_context
def _loop(_: Context, iterable: Any, literal_chars: int) -> Iterator[Any]:
    """A `for` loop's items, each charged a step and the loop body's literal text."""
    budget = current()
    for item in iterable:
        budget.step()
        budget.allocate(literal_chars)
        yield item


@pass_context
def _charge(_: Context, literal_chars: int) -> str:
    """Charges the literal text of a macro or block body each time it runs."""
    budget = current()
    budget.step()
    budget.allocate(literal_chars)
    return ""


@pass_context
def _concat(context: Context, *items: Any) -> str:
    """Jinja2's `~`, with the result's size checked before it is made."""
    budget = current()
    budget.step()
    budget.allocate(sum(budget.measure(item) for item in items))
    if context.eval_ctx.autoescape or context.eval_ctx.volatile:
        return markup_join(items)
    return str_join(items)


@pass_context
def _container(_: Context, value: Any) -> Any:
    """A list, tuple or dict literal, measured as text once it exists (it holds references)."""
    budget = current()
    budget.step()
    budget.measure(value)
    return value


_LOOP, _CHARGE, _CONCAT, _CONTAINER = (
    "stmails_loop",
    "stmails_charge",
    "stmails_concat",
    "stmails_container",
)


def _literal_chars(body: Iterable[nodes.Node]) -> int:
    """The literal text in `body`, not counting nested loops, macros and blocks (which charge
    their own)."""
    total = 0
    pending = list(body)
    while pending:
        node = pending.pop()
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif not isinstance(node, nodes.For | nodes.Macro | nodes.CallBlock | nodes.Block):
            pending.extend(node.iter_child_nodes())
    return total


def _filter(name: str, node: nodes.Expr | None, *args: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(node, name, list(args), [], None, None)


class _AddBudget(NodeTransformer):
    """Rewrites a parsed template so that loops, literal text, `~` and container literals are
    charged to the render's budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        if node.recursive:
            raise RenderBudgetExceeded("recursive loops are not available in templates")
        self.generic_visit(node)
        charge = nodes.Const(_literal_chars([*node.body, *node.else_]) + 1)
        node.iter = _filter(_LOOP, cast(nodes.Expr, node.iter), charge)
        return node

    def _charged_body(self, node: nodes.Macro | nodes.CallBlock | nodes.Block) -> nodes.Node:
        self.generic_visit(node)
        charge = nodes.Const(_literal_chars(node.body) + 1)
        node.body.insert(0, nodes.ExprStmt(_filter(_CHARGE, charge)))
        return node

    def visit_Macro(self, node: nodes.Macro) -> nodes.Node:
        return self._charged_body(node)

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        return self._charged_body(node)

    def visit_Block(self, node: nodes.Block) -> nodes.Node:
        return self._charged_body(node)

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _filter(_CONCAT, node.nodes[0], *node.nodes[1:])

    def _container(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        return _filter(_CONTAINER, node)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        return self._container(node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        return self._container(node)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        # Tuples that are assignment targets (`{% for a, b in ... %}`) are not values.
        if node.ctx != "load":
            return node
        return self._container(node)


def add_budget(template: nodes.Template) -> nodes.Template:
    """`template` (a parsed template) rewritten to charge its budget; RenderBudgetExceeded for
    constructs that are not available (recursive loops)."""
    result = _AddBudget().visit(template)
    assert isinstance(result, nodes.Template)
    return result


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with the render budget charged by every operator, call,
    filter, printed value, loop and literal (templates must be compiled with `compile_source`,
    which adds the budget to their parse tree)."""

    intercepted_binops = frozenset(_BINOPS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        finalize = kwargs.pop("finalize", None)
        super().__init__(*args, finalize=_charging_finalize(finalize), **kwargs)
        self.filters = {
            name: _budgeted_filter(name, function)
            for name, function in self.filters.items()
            if name not in _REMOVED_FILTERS
        }
        self.filters.update(
            {_LOOP: _loop, _CHARGE: _charge, _CONCAT: _concat, _CONTAINER: _container}
        )
        self.globals.pop("lipsum", None)
        self.globals["range"] = _budgeted_range
        self.globals["dict"] = _budgeted_dict

    def compile_source(self, source: str) -> Any:
        """`source` parsed, given its budget and compiled to a template."""
        return self.from_string(add_budget(self.parse(source)))

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr not in SAFE_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        # `str.format` and `format_map` are not offered (widths make arbitrary text).
        return None

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_binop(current(), operator, left, right)
        return _BINOPS[operator](left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            budget.allocate(len(owner))
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, list | tuple | dict | set | str):
            budget.measure(result)
        return result


def _charging_finalize(inner: Callable[..., Any] | None) -> Callable[..., Any]:
    """The environment's finalize: each printed value is measured before it becomes text."""
    if inner is None:

        def finalize(value: Any) -> Any:
            current().measure(value)
            return value

        return finalize
    passes = getattr(inner, "jinja_pass_arg", None)

    @functools.wraps(inner)
    def finalize_with(*args: Any) -> Any:
        current().measure(args[-1])
        return inner(*args)

    if passes is not None:
        finalize_with.jinja_pass_arg = passes  # type: ignore[attr-defined]
    return finalize_with


def _budgeted_range(*args: int) -> range:
    """`range` with at most `RenderLimits.range_items` items."""
    budget = current()
    budget.step()
    items = range(*args)
    if len(items) > budget.limits.range_items:
        raise RenderBudgetExceeded(
            f"range() of more than {budget.limits.range_items} items in a template"
        )
    return items


def _budgeted_dict(*args: Any, **kwargs: Any) -> dict[Any, Any]:
    """`dict`, measured like a dict literal."""
    made = dict(*args, **kwargs)
    current().measure(made)
    return made
