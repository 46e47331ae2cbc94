"""netfence selector: try a Calico selector against a set of labels.

    netfence selector match SELECTOR [--labels '{"k": "v"}' | --labels k=v,k2=v2]

prints `{"matches": true}` or `{"matches": false}` and exits 0; an invalid selector or label
map exits 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import json

from netfence.errors import UsageError, show
from netfence.model.calico_selector import SelectorError, parse_selector


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("selector", help="work with Calico selectors")
    verbs = parser.add_subparsers(dest="selector_verb", metavar="VERB")
    verbs.required = True

    p = verbs.add_parser("match", help="does a Calico selector match these labels? prints JSON")
    p.add_argument("selector", metavar="SELECTOR", help="""a Calico selector, e.g. 'app == "web" && has(tier)'""")
    p.add_argument(
        "--labels",
        default="",
        metavar="LABELS",
        help='a JSON object of strings (\'{"app": "web"}\') or k=v,k2=v2; default: no labels',
    )
    p.set_defaults(run=run_match)


def run_match(args: argparse.Namespace) -> int:
    try:
        selector = parse_selector(args.selector)
    except SelectorError as exc:
        raise UsageError(f"invalid selector: {exc}") from None
    labels = parse_labels(args.labels)
    print(json.dumps({"matches": selector.matches(labels)}))
    return 0


def parse_labels(text: str) -> dict[str, str]:
    """`--labels`: a JSON object whose values are all strings, or kubectl's `k=v,k2=v2`."""
    if text.lstrip()[:1] in ("{", "["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--labels: invalid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise UsageError(f'--labels: expected a JSON object of strings, like {{"app": "web"}}, got {show(value)}')
        for key, val in value.items():
            if not isinstance(val, str):
                raise UsageError(f"--labels: label {key!r}: expected a string value, got {json.dumps(val)}")
        return value
    labels: dict[str, str] = {}
    for item in text.split(",") if text.strip() else []:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--labels: expected key=value pairs separated by commas, got {item!r}")
        labels[key.strip()] = val.strip()
    return labels
