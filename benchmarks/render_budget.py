"""What the render budget costs an ordinary campaign, and how fast it stops a hostile one.

Renders a typical campaign body (a greeting with subscriber fields, a loop over ten attribute
items with filters, a conditional, a footer) for 20,000 recipients twice in the same run: through
`stmails.services.sending.templates` (the budgeted sandbox every send path uses) and through a
plain Jinja2 `SandboxedEnvironment` on the same translated source (the baseline). Prints renders
per second for both and their ratio, then the time each of a few hostile templates takes to be
refused. Run: `.venv/bin/python benchmarks/render_budget.py`.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from jinja2.sandbox import SandboxedEnvironment

from stmails.services.sending.templates import (
    TemplateRenderError,
    compile_template,
    translate_go_template,
)

BODY = """<h1>Hello {{ .Subscriber.FirstName }}</h1>
<p>Your city: {{ .Subscriber.Attribs.city | default "unknown" }}.</p>
<ul>{% for item in subscriber.attribs['items'] %}<li>{{ loop.index }}. {{ item.name|title }}
 {{ '%.2f'|format(item.price) }}</li>{% endfor %}</ul>
{{ if eq .Subscriber.Attribs.plan "pro" }}<p>Thanks for being pro.</p>
{{ else }}<p>Upgrade!</p>{{ end }}
<p><a href="{{ UnsubscribeURL }}">Unsubscribe</a></p>"""
RECIPIENTS = 20_000
HOSTILE = {
    "nested ranges": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}"
    "{% endfor %}",
    "'x' * 50000000": "{{ 'x' * 50000000 }}",
    "self-nested lists": "{% set a = [1, 2, 3] %}"
    + "{% set a = [a, a, a, a, a, a, a, a, a, a] %}" * 9
    + "{{ a }}",
    "exponential macro": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
    "{% endmacro %}{{ f(60) }}",
}


def contexts() -> list[dict[str, Any]]:
    made = []
    for number in range(RECIPIENTS):
        attribs = {
            "city": "Oslo",
            "plan": "pro" if number % 3 else "free",
            "items": [{"name": f"item {i}", "price": i * 1.5} for i in range(10)],
        }
        made.append(
            {
                "Subscriber": {"FirstName": f"User{number}", "Attribs": attribs},
                "subscriber": {"attribs": attribs},
                "UnsubscribeURL": f"https://lists.example.org/u/{number}",
            }
        )
    return made


def rate(render: Any, people: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    for context in people:
        render(context)
    return len(people) / (time.perf_counter() - start)


def main() -> int:
    people = contexts()
    budgeted = compile_template(BODY, html=True)
    env = SandboxedEnvironment(autoescape=True)
    env.globals.update(default=lambda fallback, value=None: value or fallback)
    baseline = env.from_string(translate_go_template(BODY))
    assert budgeted.render(people[1]) == baseline.render(**people[1])
    rates = {"baseline": 0.0, "budgeted": 0.0}
    # Alternate, best of three each, so both see the same machine load.
    for _ in range(3):
        rates["baseline"] = max(rates["baseline"], rate(lambda c: baseline.render(**c), people))
        rates["budgeted"] = max(rates["budgeted"], rate(budgeted.render, people))
    load = os.getloadavg()[0]
    print(f"render_budget: {RECIPIENTS} renders of a campaign body, load average {load:.2f}")
    print(f"  plain sandbox (baseline): {rates['baseline']:10.0f} renders/s")
    print(f"  budgeted sandbox:         {rates['budgeted']:10.0f} renders/s")
    print(f"  ratio budgeted/baseline:  {rates['budgeted'] / rates['baseline']:10.2f}")
    failed = 0
    for name, source in HOSTILE.items():
        start = time.perf_counter()
        try:
            compile_template(source, html=True).render({})
            outcome = "RENDERED"
            failed += 1
        except TemplateRenderError as exc:
            outcome = f"refused ({str(exc)[:60]})"
        print(f"  hostile {name:20} {time.perf_counter() - start:7.3f} s  {outcome}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
