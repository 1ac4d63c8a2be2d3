"""A derivation, step by step: f → df → … → tr(G'*dX) → simplified G, each step with its rules.

The trail is recorded by the e-graph session (``Session.watch``): after every iteration the
watched term is extracted again, and a change is one step. The rules behind a step are those
that created the e-nodes the new term uses and the previous one did not (provenance recorded
per e-node in the e-graph); ``name<-`` is an equation used right to left. When a step only
re-reads existing e-nodes (say, a class merged with a cheaper one), the rules that matched in
that iteration are named instead.

>>> import rewrite as rw
>>> g = rw.gradient("tr(A*X)", "X", {"A": (2, 3), "X": (3, 2)}, steps=True)
>>> print(format_steps(g.steps))
 1  f  = tr(A*X)           input
 2  df = d(tr(A*X))        differentiate
 3  df = tr(d(A*X))        d-tr
 4  df = tr(dA*X + A*dX)   d-mul
 5  df = tr(0*A*X + A*dX)  d-const
 6  df = tr(A*dX)          canonical form: adj-add, adj-zero, adj-mul-l, adj-tr, grad-adj
 7  G  = A'*eye(2)         read off
 8  G  = A'                normal forms: identities removed
"""

from __future__ import annotations

from dataclasses import dataclass

from .printing import to_latex, to_text
from .terms import Term, make


@dataclass(frozen=True)
class Step:
    """One line of a derivation: ``quantity = term`` (quantity ``f``, ``df`` or ``G``), the
    phase that produced it and the rules behind it."""

    quantity: str
    term: Term
    phase: str
    rules: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The term in the expression language, differentials of variables shown as ``dX``."""
        return to_text(_show_d(self.term))

    def as_json(self) -> dict:
        return {"quantity": self.quantity, "expr": self.text, "phase": self.phase,
                "rules": list(self.rules)}


def from_trail(trail: list[dict], label: str, quantity: str) -> list[Step]:
    """The steps of one watched term (entries of ``Session.trail`` with ``label``), dropping
    repeats that print the same."""
    out: list[Step] = []
    for e in trail:
        if e["label"] != label:
            continue
        rules = tuple(e["made_by"]) or tuple(sorted(e["fired"], key=lambda r: -e["fired"][r]))
        phase = "read off" if quantity == "G" and e["phase"] == "input" else e["phase"]
        step = Step(quantity, e["term"], phase, rules)
        if out and out[-1].text == step.text:
            continue
        out.append(step)
    return out


def canonical_step(trail: list[dict], g: Term, wrt: str) -> Step:
    """df = tr(G'*dX) for the collected G, naming the rules that built G (those of the
    step at which the watched ``grad`` term became G)."""
    rules: tuple[str, ...] = ()
    for e in trail:
        if e["label"] == "grad":
            rules = tuple(e["made_by"]) or tuple(e["fired"])
    x = Term("var", (), "d" + wrt, g.shape)
    gt = g.args[0] if g.op == "t" else make("t", g)  # G'' is G
    return Step("df", make("tr", make("mul", gt, x)), "canonical form", rules)


#: a line longer than this puts the rules on a line of their own
LINE = 100


def format_steps(steps: list[Step]) -> str:
    """Numbered lines ``k  quantity = expr   why`` (rules of the expand/close/collect phases bare,
    others as ``phase: rules``)."""
    width = max((len(s.text) for s in steps), default=0)
    qw = max((len(s.quantity) for s in steps), default=1)
    lines = []
    for k, s in enumerate(steps, 1):
        if s.phase in ("expand", "close", "collect"):
            why = ", ".join(s.rules)
        else:
            why = f"{s.phase}: {', '.join(s.rules)}" if s.rules else s.phase
        head = f"{k:2d}  {s.quantity:<{qw}} = "
        if len(head) + width + 2 + len(why) <= LINE:
            lines.append(f"{head}{s.text:<{width}}  {why}".rstrip())
        else:
            lines.append(f"{head}{s.text}")
            lines.append(f"{'':{len(head)}}[{why}]")
    return "\n".join(lines)


#: the left-hand side of each quantity in LaTeX
_LATEX_QUANTITY = {"f": "f", "df": r"\mathrm{d}f", "G": "G"}
_TEXT_SPECIALS = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "&": r"\&",
                  "%": r"\%", "$": r"\$", "#": r"\#", "^": r"\^{}", "~": r"\~{}"}


def latex_text(s: str) -> str:
    """``s`` for ``\\text{...}``: LaTeX's special characters escaped.

    >>> print(latex_text("a_b & 50%"))
    a\\_b \\& 50\\%
    """
    return "".join(_TEXT_SPECIALS.get(c, c) for c in s)


def _latex_why(s: Step) -> str:
    """The reason column of a step: its phase (except the rule phases) and its rules, a rule used
    right to left (``name<-``) marked with a left arrow."""
    rules = [r"\text{" + latex_text(r.removesuffix("<-")) + "}"
             + (r"\,{\leftarrow}" if r.endswith("<-") else "") for r in s.rules]
    head = [] if s.phase in ("expand", "close", "collect") and rules else [
        r"\text{" + latex_text(s.phase) + (":" if rules else "") + "}"]
    return r"\ ".join(head + [", ".join(rules)] if rules else head)


def _latex_term(s: Step) -> Term:
    """The step's term with the ``dX`` of the canonical form written as the differential d(X)."""
    t = s.term
    if s.phase == "canonical form" and t.op == "tr" and t.args[0].op == "mul":
        x = t.args[0].args[1]
        if x.op == "var" and x.attr.startswith("d"):
            dx = make("d", Term("var", (), x.attr[1:], x.shape))
            return make("tr", make("mul", t.args[0].args[0], dx))
    return t


def steps_latex(steps: list[Step]) -> str:
    """The derivation as an ``align*`` block: one row per step, ``f``, ``df`` and ``G`` written
    on the first row of each (later rows start at ``=``), the rules in a right column.

    >>> from rewrite.terms import var
    >>> A = var("A", (2, 2))
    >>> print(steps_latex([Step("f", make("tr", A), "input"),
    ...                    Step("G", make("t", make("t", A)), "read off"),
    ...                    Step("G", A, "tidy", ("tidy-t-t",))]))
    \\begin{align*}
    f &= \\operatorname{tr}\\left(A\\right) && \\text{input} \\\\
    G &= \\left(A^{\\top}\\right)^{\\top} && \\text{read off} \\\\
      &= A && \\text{tidy:}\\ \\text{tidy-t-t}
    \\end{align*}
    """
    rows, last = [], None
    for s in steps:
        lhs = _LATEX_QUANTITY.get(s.quantity, latex_text(s.quantity)) if s.quantity != last else " "
        last = s.quantity
        rows.append(f"{lhs} &= {to_latex(_latex_term(s))} && {_latex_why(s)}")
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


def _show_d(t: Term) -> Term:
    """``d(X)`` of a variable as the name ``dX`` (how differentials print elsewhere)."""
    if t.op == "d" and t.args[0].op == "var":
        return Term("var", (), "d" + t.args[0].attr, t.shape)
    if not t.args:
        return t
    return Term(t.op, tuple(_show_d(a) for a in t.args), t.attr, t.shape)


__all__ = ["Step", "Steps", "format_steps", "steps_latex", "from_trail", "canonical_step"]


class Steps(list):
    """A derivation's steps (a list of :class:`Step`) that print themselves: ``text()`` as
    :func:`format_steps`, ``latex()`` as :func:`steps_latex`."""

    def text(self) -> str:
        """One line per step with its rules."""
        return format_steps(self)

    def latex(self) -> str:
        """The derivation as an ``align*`` block."""
        return steps_latex(self)

