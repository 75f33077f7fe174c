"""Message templating: Jinja2 in a sandbox, with listmonk's Go-template expressions understood.

Campaign bodies, transactional templates, subjects and headers are rendered per recipient. Two
dialects are accepted in the same text:

- Jinja2, with lower-case names: `{{ subscriber.name }}`, `{{ subscriber.attribs.city }}`,
  `{{ tx.data.code }}`, `{% if ... %}`.
- listmonk's Go-template expressions, translated to Jinja2 before compiling:
  `{{ .Subscriber.Name }}`, `{{ .Subscriber.Attribs.city }}`, `{{ .Tx.Data.code }}`,
  `{{ template "content" . }}`, `{{ UnsubscribeURL }}`, `{{ TrackView }}`,
  `{{ ManageURL }}`, `{{ OptinURL }}`, `{{ ArchiveURL }}`,
  `{{ TrackLink "url" }}` (and the `url@TrackLink` shorthand), `{{ Date "2006-01-02" }}`,
  `{{ Safe "<!-- x -->" }}`, `{{ if eq .A "b" }}...{{ else if ... }}...{{ else }}...{{ end }}`,
  `{{ range .List }}` (with `.` standing for the item), and Sprig's common functions
  (`{{ .Subscriber.Name | default "friend" | upper }}`, `{{ trunc 20 .X }}`,
  `{{ date "2006-01-02" .Subscriber.CreatedAt }}`; see `sprig`).

Templates run in a Jinja2 sandbox (no access to Python internals) under a render budget
(`template_budget`): steps, characters and time are charged before the work is done, so a
template can neither escape nor exhaust the worker. The translation of Go expressions is linear in
the size of the source, which is capped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import markdown as markdown_lib
from jinja2 import StrictUndefined, TemplateError, Undefined, nodes, pass_eval_context
from jinja2.nodes import EvalContext
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from stmails.services.errors import InputError
from stmails.services.sending import sprig
from stmails.services.sending.template_budget import (
    BudgetedEnvironment,
    current,
    end_render,
    rendering,
    start_render,
)

# A template larger than this is refused when compiled.
MAX_TEMPLATE_CHARS = 512 * 1024
# A rendered body larger than this is refused (a loop cannot fill the worker's memory).
MAX_OUTPUT_CHARS = 4 * 1024 * 1024


class TemplateRenderError(InputError):
    """A template that does not compile or does not render; the message says why."""


# A Go pipeline with more stages than this is refused (each stage nests one call deeper).
MAX_PIPELINE_STAGES = 32
# A Go string literal: "..." with backslash escapes, or a raw `...` string.
_GO_STRING = r'"(?:[^"\\]|\\.)*"|`[^`]*`'
_GO_TOKEN = re.compile(rf"\s*({_GO_STRING}|\$?[A-Za-z_.][\w.$]*|-?\d+(?:\.\d+)?|\(|\))")
# Go functions that listmonk templates call with space-separated arguments.
_GO_FUNCTIONS = {
    "TrackLink",
    "Date",
    "Safe",
    "L",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "upper",
    "lower",
    "title",
    "trim",
    "default",
}
# Sprig's functions (services.sending.sprig) not named above: called as `sprig_<name>` so
# that they do not shadow Jinja2's own globals (`dict`, `range`...).
_SPRIG = frozenset(name for name in sprig.FUNCTIONS if name not in _GO_FUNCTIONS)
_GO_FUNCTIONS |= _SPRIG
_COMPARISONS = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_BARE_VALUES = {
    "UnsubscribeURL",
    "TrackView",
    "MessageURL",
    "OptinURL",
    "ManageURL",
    "ArchiveURL",
}


def _go_string_to_jinja(token: str) -> str:
    """A Go string literal as a Jinja2 string literal (both accept backslash escapes)."""
    if token.startswith("`"):
        return repr(token[1:-1])
    return token


def _subscripts(parts: list[str]) -> str:
    """Go field steps as Jinja2 subscripts, so that a map key wins over a method of the same
    name (`.Tx.Data.items` is the key "items", not `dict.items`)."""
    return "".join(f"[{part!r}]" for part in parts if part)


def _go_operand(token: str, dot: str) -> str:
    """One Go operand (`.Field.Path`, `$var`, literal) as a Jinja2 expression."""
    if token.startswith(('"', "`")):
        return _go_string_to_jinja(token)
    if token == ".":
        return dot
    if token.startswith("."):
        parts = token[1:].split(".")
        if dot == "_root":
            return parts[0] + _subscripts(parts[1:])
        return dot + _subscripts(parts)
    if token.startswith("$"):
        head, *rest = (token[1:] or "_root").split(".")
        return f"go_{head}" + _subscripts(rest)
    if token in {"true", "false"}:
        return token.capitalize()
    if token == "nil":
        return "None"
    return token


def _tokens(expr: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    expr = expr.strip()
    while position < len(expr):
        match = _GO_TOKEN.match(expr, position)
        if match is None:
            raise TemplateRenderError(f"cannot translate Go template expression: {expr[:80]!r}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _go_call(tokens: list[str], dot: str) -> str:
    """A Go pipeline stage `fn arg arg` (or a single operand) as a Jinja2 expression."""
    if not tokens:
        raise TemplateRenderError("empty Go template expression")
    head, args = tokens[0], tokens[1:]
    if head == "(":
        raise TemplateRenderError("parenthesised Go expressions are not supported")
    operands = [_go_operand(arg, dot) for arg in args]
    if head in _COMPARISONS and len(operands) >= 2:
        op = _COMPARISONS[head]
        if head == "eq" and len(operands) > 2:
            return "(" + " or ".join(f"{operands[0]} == {o}" for o in operands[1:]) + ")"
        return f"({operands[0]} {op} {operands[1]})"
    if head in {"and", "or"}:
        return "(" + f" {head} ".join(operands) + ")"
    if head == "not":
        return f"(not {operands[0]})"
    if head == "len":
        return f"({operands[0]}|length)"
    if head == "index":
        return operands[0] + "".join(f"[{o}]" for o in operands[1:])
    if head in _SPRIG:
        return f"sprig_{head}({', '.join(operands)})"
    if head in _GO_FUNCTIONS or head in _BARE_VALUES:
        if head in _BARE_VALUES and not operands:
            return head
        return f"{head}({', '.join(operands)})"
    if args:
        raise TemplateRenderError(f"unknown Go template function {head!r}")
    return _go_operand(head, dot)


def _pipeline_stages(expr: str) -> list[str]:
    """`expr` split at the `|` characters outside string literals (one pass)."""
    stages: list[str] = []
    start = 0
    quote = ""
    index = 0
    while index < len(expr):
        char = expr[index]
        if quote:
            if char == "\\" and quote == '"':
                index += 1
            elif char == quote:
                quote = ""
        elif char in '"`':
            quote = char
        elif char == "|":
            stages.append(expr[start:index])
            start = index + 1
        index += 1
    stages.append(expr[start:])
    return stages


# The previous stage's value in a stage of a pipeline: no source token produces it.
_PIPED = "$\x00piped"


def _go_pipeline(expr: str, dot: str) -> str:
    """A Go pipeline `a | fn x` (the previous value is the last argument) as Jinja2.

    Each stage is translated once with a placeholder for the previous value, and the result is
    assembled from the parts around the placeholders, so the work is linear in `expr`.
    """
    stages = _pipeline_stages(expr)
    if len(stages) > MAX_PIPELINE_STAGES:
        raise TemplateRenderError(f"a Go pipeline of more than {MAX_PIPELINE_STAGES} stages")
    first = _go_call(_tokens(stages[0]), dot)
    placeholder = _go_operand(_PIPED, dot)
    before: list[str] = []
    after: list[str] = []
    for stage in stages[1:]:
        translated = _go_call([*_tokens(stage), _PIPED], dot)
        # The previous value is the stage's last operand, so its last occurrence.
        head, found, tail = translated.rpartition(placeholder)
        if not found:
            # The stage does not use the previous value: what came before is dropped.
            first, before, after = translated, [], []
            continue
        before.append(head)
        after.append(tail)
    return "".join(reversed(before)) + first + "".join(after)


@dataclass
class _Block:
    kind: str
    dot: str


@dataclass
class _Translator:
    blocks: list[_Block] = field(default_factory=list)
    counter: int = 0

    @property
    def dot(self) -> str:
        for block in reversed(self.blocks):
            if block.kind in {"range", "with"}:
                return block.dot
        return "_root"

    def action(self, left: str, body: str, right: str) -> str:
        """One `{{ ... }}` action as Jinja2; plain Jinja2 expressions pass through unchanged."""
        text = body.strip()
        word = text.split(None, 1)[0] if text else ""
        rest = text[len(word) :].strip()

        def tag(inner: str) -> str:
            return "{%" + left + " " + inner + " " + right + "%}"

        def out(inner: str) -> str:
            return "{{" + left + " " + inner + " " + right + "}}"

        if word == "template" or word == "block":
            name_match = re.match(rf"({_GO_STRING})", rest)
            if name_match is None:
                raise TemplateRenderError(f"bad template action: {text[:80]!r}")
            name = name_match.group(1).strip('"`')
            if name != "content":
                raise TemplateRenderError(f"unknown template {name!r}; only 'content' exists")
            return out("content")
        if word == "if":
            self.blocks.append(_Block("if", self.dot))
            return tag("if " + _go_pipeline(rest, self.dot))
        if word == "else":
            if rest.startswith("if "):
                return tag("elif " + _go_pipeline(rest[3:], self.dot))
            if self.blocks and self.blocks[-1].kind == "with":
                raise TemplateRenderError("{{ else }} inside {{ with }} is not supported")
            return tag("else")
        if word == "end":
            if not self.blocks:
                raise TemplateRenderError("{{ end }} without an opening action")
            block = self.blocks.pop()
            if block.kind == "with":
                return tag("endif") + tag("endwith")
            return tag({"if": "endif", "range": "endfor"}[block.kind])
        if word == "range":
            return self._range(rest, tag)
        if word == "with":
            self.counter += 1
            name = f"go_with{self.counter}"
            expr = _go_pipeline(rest, self.dot)
            self.blocks.append(_Block("with", name))
            # Go's `with` renders its body only when the value is non-empty.
            return tag(f"with {name} = {expr}") + tag(f"if {name}")
        if word in {"define"}:
            raise TemplateRenderError("{{ define }} is not supported; use the template's body")
        if text.startswith((".", "$")) or word in _GO_FUNCTIONS:
            return out(_go_pipeline(text, self.dot))
        if word in _BARE_VALUES and not rest:
            return out(word)
        return "{{" + left + body + right + "}}"

    def _range(self, rest: str, tag: Callable[[str], str]) -> str:
        self.counter += 1
        names, assign, expr = rest.partition(":=")
        variables = [v.strip() for v in names.split(",")] if assign else []
        if assign and 1 <= len(variables) <= 2 and all(_is_variable(v) for v in variables):
            first, second = variables[0][1:], variables[1][1:] if len(variables) == 2 else None
            source = _go_pipeline(expr.strip(), self.dot)
            self.blocks.append(_Block("range", f"go_{second or first}"))
            if second:
                return tag(f"for go_{first}, go_{second} in go_pairs({source})")
            return tag(f"for go_{first} in {source}")
        name = f"go_item{self.counter}"
        source = _go_pipeline(rest, self.dot)
        self.blocks.append(_Block("range", name))
        return tag(f"for {name} in {source}")


def _is_variable(text: str) -> bool:
    """A Go variable: `$` and a word."""
    return len(text) > 1 and text[0] == "$" and (text[1:].replace("_", "a").isalnum())


def _ends_url(char: str) -> bool:
    """Whether `char` cannot be part of a URL in the TrackLink shorthand."""
    return char.isspace() or char in "\"'<>@"


def _track_link_shorthand(source: str) -> str:
    """listmonk's `https://example.com@TrackLink` shorthand as `{{ TrackLink "..." }}`.

    Each `@TrackLink` looks back over the characters a URL may hold to its `http(s)://` start;
    those runs never overlap, so the work is linear.
    """
    marker = "@TrackLink"
    parts: list[str] = []
    done = 0
    at = source.find(marker)
    while at != -1:
        start = at
        while start > done and not _ends_url(source[start - 1]):
            start -= 1
        run = source[start:at]
        candidates = [i for i in (run.find("http://"), run.find("https://")) if i != -1]
        url_start = min(candidates) if candidates else -1
        if url_start != -1 and len(run) > url_start + run[url_start:].index("//") + 2:
            url = run[url_start:]
            parts.append(source[done : start + url_start])
            parts.append('{{ TrackLink "' + url + '" }}')
            done = at + len(marker)
        at = source.find(marker, at + len(marker))
    parts.append(source[done:])
    return "".join(parts)


def _replace_actions(source: str, action: Callable[[str, str, str], str]) -> str:
    """Every `{{ ... }}` in `source` replaced by `action(left trim, body, right trim)`.

    The closing `}}` is searched once per action, so an unclosed `{{` costs one scan in all.
    """
    parts: list[str] = []
    done = 0
    while True:
        start = source.find("{{", done)
        if start == -1:
            break
        end = source.find("}}", start + 2)
        if end == -1:
            break
        inner = source[start + 2 : end]
        left = "-" if inner.startswith("-") else ""
        inner = inner[len(left) :]
        right = "-" if inner.endswith("-") else ""
        body = inner[: len(inner) - len(right)]
        parts.append(source[done:start])
        parts.append(action(left, body, right))
        done = end + 2
    parts.append(source[done:])
    return "".join(parts)


def translate_go_template(source: str) -> str:
    """listmonk Go-template actions in `source` rewritten as Jinja2; Jinja2 text is kept."""
    source = _track_link_shorthand(source)
    translator = _Translator()
    translated = _replace_actions(source, translator.action)
    if translator.blocks:
        raise TemplateRenderError(f"unclosed {{{{ {translator.blocks[-1].kind} }}}} action")
    return translated


def _go_pairs(value: Any) -> list[tuple[Any, Any]]:
    """Go's `range $k, $v := x`: (key, value) for maps and (index, item) for sequences."""
    if isinstance(value, Mapping):
        return list(value.items())
    return list(enumerate(value or ()))


def _go_date(layout: str = "2006-01-02 15:04:05") -> str:
    """listmonk's `Date`: Go's reference-time layout applied to the current UTC time (the
    layout read as Sprig's `date` reads it)."""
    return datetime.now(UTC).strftime(sprig.go_layout(layout))


class _LenientUndefined(Undefined):
    """A missing attribute renders empty, as in listmonk (an unknown attrib is not an error)."""


# The characters `render_marked` puts around each expression's output.
VALUE_START = "\x02"
VALUE_END = "\x03"


class _MarkerInValue(Exception):
    """A value contains a marker character: the marked output would be ambiguous."""


@pass_eval_context
def _mark_value(eval_ctx: EvalContext, value: Any) -> str:
    # The value exactly as the plain environment prints it, then enclosed in the markers.
    # Plain text is escaped by the caller (escaping leaves the markers alone).
    text = value if type(value) is str else escape(value) if eval_ctx.autoescape else str(value)
    if VALUE_START in text or VALUE_END in text:
        raise _MarkerInValue
    marked = f"{VALUE_START}{text}{VALUE_END}"
    return marked if text is value else Markup(marked)


def _print(*values: Any) -> str:
    """Go's `print`: the values' text, joined (measured before it is made)."""
    budget = current()
    budget.allocate(sum(budget.measure(value) for value in values))
    return "".join(str(value) for value in values)


def _environment(
    autoescape: bool, finalize: Callable[..., Any] | None = None
) -> BudgetedEnvironment:
    env = BudgetedEnvironment(autoescape=autoescape, undefined=_LenientUndefined, finalize=finalize)
    env.globals.update(
        Date=_go_date,
        Safe=Markup,
        go_pairs=_go_pairs,
        upper=lambda s: str(s).upper(),
        lower=lambda s: str(s).lower(),
        title=lambda s: str(s).title(),
        trim=lambda s: str(s).strip(),
        default=lambda fallback, value=None: value or fallback,
        print=_print,
        L=lambda: {},
        **{f"sprig_{name}": function for name, function in sprig.FUNCTIONS.items()},
    )
    return env


_ENVIRONMENTS = {True: _environment(True), False: _environment(False)}
# HTML templates compiled here render with every expression's output marked (render_marked).
_MARKED = _environment(True, finalize=_mark_value)
# The strict environment exists so tests can ask for errors on missing names.
_STRICT = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)


@dataclass(frozen=True)
class CompiledTemplate:
    """A template compiled once and rendered for many recipients."""

    source: str
    html: bool
    _template: Any
    # The output of a template without any expression (a fixed From, say): no rendering.
    constant: str | None = None
    # The template's globals (environment functions such as Date and Safe) as one plain dict.
    _globals: Mapping[str, Any] = field(default_factory=dict)
    # The same template compiled to mark its values (see `render_marked`), when asked for.
    _marked: Any = None

    def render(self, context: Mapping[str, Any]) -> str:
        """The template rendered with `context`; TemplateRenderError if it fails or is too big."""
        if self.constant is not None:
            return self.constant
        return self._render(self._template, context)

    def render_marked(self, context: Mapping[str, Any]) -> str | None:
        """`render(context)` with each expression's output enclosed in VALUE_START and VALUE_END
        (which occur nowhere else in it); None when the template was not compiled for marking,
        a value contains a marker character, or rendering fails (`render` then says why)."""
        if self._marked is None:
            return None
        try:
            return self._render(self._marked, context)
        except (_MarkerInValue, TemplateRenderError):
            return None

    def _render(self, template: Any, context: Mapping[str, Any]) -> str:
        environment = template.environment
        # What Template.render does, minus its per-call copies: the globals are merged into one
        # dict once per template, and the context is built without re-reading the globals'
        # ChainMap (its keys only matter to template imports, which these templates cannot do).
        context_class: Any = environment.context_class
        variables = {**self._globals, **context} if self._globals else dict(context)
        token = start_render()
        try:
            state = context_class(environment, variables, template.name, template.blocks)
            return _collect(environment, template.root_render_func(state))
        except TemplateError as exc:
            raise TemplateRenderError(f"template error: {exc}") from exc
        except (
            TypeError,
            ValueError,
            AttributeError,
            KeyError,
            IndexError,
            ArithmeticError,
            RecursionError,
        ) as exc:
            raise TemplateRenderError(f"template error: {exc}") from exc
        finally:
            end_render(token)


def _collect(environment: Any, pieces: Iterable[str]) -> str:
    """The rendered pieces joined; TemplateRenderError past MAX_OUTPUT_CHARS.

    What the pieces can add up to is already bounded while they are made (the render budget
    charges every printed value and every repeated literal), so they are gathered at C speed
    and measured once."""
    kept = list(pieces)
    if sum(map(len, kept)) > MAX_OUTPUT_CHARS:
        raise TemplateRenderError("rendered message is larger than the limit")
    return str(environment.concat(kept))


def compile_template(source: str, *, html: bool, marked: bool = False) -> CompiledTemplate:
    """`source` (Jinja2 and/or listmonk Go syntax) compiled; `html` turns on autoescaping, and
    `marked` (HTML only) also compiles it for `CompiledTemplate.render_marked`."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateRenderError("template is larger than the limit")
    return _compile_jinja(translate_go_template(source), source, html, marked)


# Where a translated layout places the body.
_CONTENT_SLOT = re.compile(r"\{\{-? content -?\}\}")


def compile_with_content(
    layout: str, body: str, *, html: bool, marked: bool = False
) -> CompiledTemplate:
    """A layout with the body template inlined at its content slot: one template, rendered once
    per recipient (as Go's `{{ template "content" . }}` runs the body with the same data)."""
    if len(layout) + len(body) > MAX_TEMPLATE_CHARS:
        raise TemplateRenderError("template is larger than the limit")
    # The body compiles on its own first, so its errors are reported as the body's.
    compile_template(body, html=html)
    translated_body = translate_go_template(body)
    combined = _CONTENT_SLOT.sub(lambda _: translated_body, translate_go_template(layout))
    return _compile_jinja(combined, layout, html, marked)


def _compiled(environment: BudgetedEnvironment, jinja_source: str) -> Any:
    """`jinja_source` compiled with its render budget; TemplateRenderError when it does not
    compile (too deeply nested for the parser or for Python's compiler included)."""
    try:
        with rendering():
            return environment.compile_source(jinja_source)
    except TemplateError as exc:
        raise TemplateRenderError(f"template syntax error: {exc}") from exc
    except (RecursionError, SyntaxError, MemoryError, OverflowError) as exc:
        raise TemplateRenderError(f"template syntax error: too deeply nested ({exc})") from None


def _compile_jinja(
    jinja_source: str, source: str, html: bool, marked: bool = False
) -> CompiledTemplate:
    template = _compiled(_ENVIRONMENTS[html], jinja_source)
    constant = None
    if "{{" not in jinja_source and "{%" not in jinja_source and "{#" not in jinja_source:
        with rendering():
            constant = str(template.render())
    marked_template = None
    # Marking needs the marker and slot characters to be absent from the template itself.
    if (
        marked
        and html
        and constant is None
        and not {"\x00", VALUE_START, VALUE_END} & set(jinja_source)
    ):
        marked_template = _compiled(_MARKED, jinja_source)
    return CompiledTemplate(
        source=source,
        html=html,
        _template=template,
        constant=constant,
        _globals=dict(template.globals),
        _marked=marked_template,
    )


def uses_content(source: str) -> bool:
    """Whether a layout template places the body (`{{ template "content" . }}`)."""
    try:
        parsed = _STRICT.parse(translate_go_template(source))
    except (TemplateError, TemplateRenderError):
        return False
    return any(n.name == "content" for n in parsed.find_all(nodes.Name))


def _template_actions(source: str) -> Iterable[tuple[int, int]]:
    """(start, end) of each `{{ ... }}` and `{% ... %}` in `source`, left to right, without
    overlaps. A kind of opening that has no closing after it is not searched again, so the
    work is linear."""
    closers = {"{{": "}}", "{%": "%}"}
    dead: set[str] = set()
    position = 0
    while True:
        found = [
            (at, opener)
            for opener in closers
            if opener not in dead and (at := source.find(opener, position)) != -1
        ]
        if not found:
            return
        start, opener = min(found)
        end = source.find(closers[opener], start + 2)
        if end == -1:
            dead.add(opener)
            continue
        yield start, end + 2
        position = end + 2


def markdown_to_html(source: str) -> str:
    """Markdown converted to HTML, with every template action left exactly as written.

    Template actions are shielded from the converter, which would read `_x_` as emphasis.
    """
    saved: list[str] = []
    shielded: list[str] = []
    done = 0
    for start, end in _template_actions(source):
        shielded.append(source[done:start])
        shielded.append(f"\x00{len(saved)}\x00")
        saved.append(source[start:end])
        done = end
    shielded.append(source[done:])
    html = markdown_lib.markdown(
        "".join(shielded), extensions=["extra", "sane_lists"], output_format="html"
    )
    return re.sub(r"\x00(\d+)\x00", lambda m: saved[int(m.group(1))], html)


def escape_html(text: str) -> str:
    """Text escaped for HTML."""
    return str(escape(text))
