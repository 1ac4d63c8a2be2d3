"""Normal forms kept outside the rules, as pure functions of terms: sums with their summands in
a canonical order (commutativity of ``+`` is never a rule), like terms, zero summands, depth.
"""

from __future__ import annotations

from .printing import summands, to_text
from .terms import Term, post_order


def depth(t: Term) -> int:
    """Levels of nesting of ``t`` (a leaf has depth 1), without recursion."""
    d: dict[Term, int] = {}
    for n in post_order(t):
        d[n] = 1 + max((d[a] for a in n.args), default=0)
    return d[t]


def canonical_sum(t: Term) -> Term:
    """Order the summands of the sum ``t`` canonically (like terms side by side), balanced;
    in sums nested inside ``t`` (in a product, say), move like terms next to the first of them.

    This is the n-ary sum kept outside the rules: commutativity of ``+`` is never a rule, so
    like terms (equal up to a number) meet only if they are neighbours. Summands ``0*A`` are
    dropped (one is kept when nothing else is left): the zero terms a derivation collects
    would otherwise stay in the e-graph as replaced nodes of every class they were added to.

    >>> from rewrite.parse import parse
    >>> from rewrite.printing import to_text
    >>> sh = {"X": (3, 3), "A": (3, 3)}
    >>> to_text(canonical_sum(parse("X*X' - A' + 2*(X*X') - A", sh)))
    "2*X*X' - A - A' + X*X'"
    >>> to_text(canonical_sum(parse("(X*X' - A' + 2*(X*X') - A)*(1 + X)", sh)))
    "(X*X' + 2*X*X' - A' - A)*(1 + X)"
    """
    def key(x: Term) -> tuple[str, str]:
        return (to_text(like(x)), to_text(x))

    memo: dict[Term, Term] = {}

    def go(n: Term, top: bool) -> Term:
        out = memo.get(n)
        if out is not None and not top:
            return out
        if n.op == "add":
            terms = [go(x, False) for x in summands(n)]
            terms = [x for x in terms if not is_zero(x)] or terms[:1]
            if top:
                terms.sort(key=key)
            else:  # grouped by first appearance, otherwise in the order given
                first: dict[Term, int] = {}
                for x in terms:
                    first.setdefault(like(x), len(first))
                terms.sort(key=lambda x: first[like(x)])
            while len(terms) > 1:  # balanced, so that long sums stay shallow
                terms = [Term("add", (terms[i], terms[i + 1]), None, n.shape)
                         if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
            out = terms[0]
        elif n.args:
            args = tuple(go(a, False) for a in n.args)
            out = n if args == n.args else Term(n.op, args, n.attr, n.shape)
        else:
            out = n
        if not top:
            memo[n] = out
        return out

    return go(t, True)


def is_zero(x: Term) -> bool:
    """``0*A`` (or the number 0)."""
    if x.op == "num":
        return x.attr == 0
    return x.op == "scale" and x.args[0].op == "num" and x.args[0].attr == 0


def like(x: Term) -> Term:
    """A summand without its numeric coefficient: like terms have the same."""
    return x.args[1] if x.op == "scale" and x.args[0].op == "num" else x


def apart_like_terms(t: Term) -> bool:
    """Whether some sum in ``t`` has like terms (equal up to a number) that are not neighbours.

    >>> from rewrite.parse import parse
    >>> sh = {"X": (3, 3), "A": (3, 3)}
    >>> apart_like_terms(parse("(X - A + 2*X)*X", sh)), apart_like_terms(parse("X + 2*X - A", sh))
    (True, False)
    """
    nodes = post_order(t)
    inner = {a for n in nodes if n.op == "add" for a in n.args if a.op == "add"}
    for n in nodes:
        if n.op == "add" and n not in inner:  # a whole sum, not a part of a bigger one
            cores = [like(p) for p in summands(n)]
            if any(c in cores[i + 2:] and cores[i + 1] != c for i, c in enumerate(cores)):
                return True
    return False


def make_pair(a: Term, b: Term) -> Term:
    """A throwaway node holding two terms, so that they are renamed or sampled consistently."""
    return Term("add", (a, b), None, a.shape)
