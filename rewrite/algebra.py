"""Normal forms kept outside the rules, as pure functions of terms: sums with their summands in
a canonical order (commutativity of ``+`` is never a rule), like terms, zero summands, depth;
elementwise products and quotients as monomials, whose like factors merge into powers and
cancel.
"""

from __future__ import annotations

from fractions import Fraction

from .printing import summands, to_text
from .terms import Term, post_order, size


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


def number(t: Term) -> Fraction | None:
    """The value of a 1×1 term built from numbers only (``-2/3``), else None.

    >>> from rewrite.parse import parse
    >>> number(parse("-2/3")), number(parse("x", {"x": ()}))
    (Fraction(-2, 3), None)
    """
    if t.op == "num":
        return Fraction(t.attr)
    vals = [number(a) for a in t.args] if t.op in ("add", "scale", "had", "hdiv", "mul") else [None]
    if None in vals:
        return None
    a, b = vals
    if t.op == "add":
        return a + b
    if t.op == "hdiv":
        return a / b if b else None
    return a * b


#: operators whose nested uses form one elementwise monomial
MONOMIAL_OPS = ("had", "hdiv", "epows", "scale", "mul")


def hadamard_monomials(t: Term) -> Term:
    """Every elementwise product/quotient chain of ``t`` (``.*``, ``./``, ``.^`` by a number,
    numeric scalings, and products of 1×1 factors) as one monomial: like factors merged into
    powers, factors that cancel dropped, numbers multiplied into one coefficient. A chain is
    rewritten only when that makes it smaller.

    >>> from rewrite.parse import parse
    >>> from rewrite.printing import to_text
    >>> sh = {"M": (2, 3), "P": (2, 3), "x": (3,), "X": (3, 3)}
    >>> to_text(hadamard_monomials(parse("(M ./ (P .* P)) .* (1 ./ (M ./ P)) .* M", sh)))
    'M ./ P'
    >>> to_text(hadamard_monomials(parse("x'*x .* (x'*x)", sh)))
    "(x'*x)^2"
    >>> to_text(hadamard_monomials(parse("det(X)^(-2/3)*det(X)", sh)))
    'det(X)^(1/3)'
    """
    return bottom_up(t, lambda m: monomial(m) if m.op in MONOMIAL_OPS and is_monomial_node(m) else m)


def bottom_up(t: Term, fn) -> Term:
    """``t`` rebuilt from the leaves up, each node (with its arguments already rebuilt) passed
    through ``fn``; shared subterms are rebuilt once."""
    memo: dict[Term, Term] = {}
    for n in post_order(t):
        args = tuple(memo[a] for a in n.args)
        memo[n] = fn(n if args == n.args else Term(n.op, args, n.attr, n.shape))
    return memo[t]


def is_monomial_node(n: Term) -> bool:
    """Whether ``n`` joins a monomial: ``.*``, ``./``, ``.^`` with a numeric exponent, a numeric
    scaling, a 1×1 scaling of a 1×1 or a product of 1×1s."""
    if n.op in ("had", "hdiv"):
        return True
    if n.op == "epows":
        return number(n.args[1]) is not None
    if n.op == "scale":
        return number(n.args[0]) is not None or n.shape == (1, 1)
    return n.op == "mul" and n.shape == (1, 1) and n.args[0].shape == (1, 1)


def monomial(n: Term) -> Term:
    """The chain at ``n`` rebuilt with merged powers (``n`` itself if that is not smaller)."""
    coef = Fraction(1)
    powers: dict[Term, Fraction] = {}

    def collect(x: Term, e: Fraction) -> bool:
        nonlocal coef
        c = number(x)
        if c is not None:
            if e.denominator != 1 or (c == 0 and e < 0):  # kept exact: no roots, no 1/0
                return False
            coef *= c ** e
            return True
        if x.op == "fill":
            return True
        if x.op not in MONOMIAL_OPS or not is_monomial_node(x):
            powers[x] = powers.get(x, Fraction(0)) + e
            return True
        if x.op in ("had", "mul"):
            return collect(x.args[0], e) and collect(x.args[1], e)
        if x.op == "hdiv":
            return collect(x.args[0], e) and collect(x.args[1], -e)
        if x.op == "scale":
            return collect(x.args[0], e) and collect(x.args[1], e)
        return collect(x.args[0], e * number(x.args[1]))  # epows

    if not collect(n, Fraction(1)) or coef == 0:
        return n
    ones = Term("num", (), Fraction(1), (1, 1)) if n.shape == (1, 1) else Term("fill", (), n.shape, n.shape)

    def power(base: Term, e: Fraction) -> Term:
        if e == 1:
            return base
        return Term("epows", (base, Term("num", (), e, (1, 1))), None, base.shape)

    def product(items: list[tuple[Term, Fraction]]) -> Term | None:
        out = None
        for base, e in items:
            f = power(base, e)
            out = f if out is None else Term("had", (out, f), None, n.shape)
        return out

    up = product([(b, e) for b, e in powers.items() if e > 0])
    down = product([(b, -e) for b, e in powers.items() if e < 0])
    body = up if down is None else Term("hdiv", (up if up is not None else ones, down), None, n.shape)
    if body is None:
        body = ones
    if coef != 1:
        c = Term("num", (), coef, (1, 1))
        body = c if body == ones and n.shape == (1, 1) else Term("scale", (c, body), None, n.shape)
    return body if size(body) <= size(n) and body != n else n


def symmetric(t: Term, names: frozenset[str] = frozenset()) -> bool:
    """Whether ``t`` is symmetric by construction: ``A'*A``, ``A*A'``, ``B*S*B'``, identities,
    ``ones(n)*ones(n)'``, 1×1 terms, the variables ``names`` (declared symmetric), and sums,
    scalings, inverses, powers and elementwise functions of symmetric terms.

    >>> from rewrite.parse import parse
    >>> sh = {"X": (4, 3), "lam": (), "A": (3, 3)}
    >>> symmetric(parse("X'*X + lam*eye(3)", sh)), symmetric(parse("X'*X + A", sh))
    (True, False)
    """
    if t.shape == (1, 1) or t.op in ("eye",) or (t.op == "var" and t.attr in names):
        return True
    if t.op == "fill":
        return t.shape[0] == t.shape[1]
    if t.op == "mul":
        a, b = t.args
        if b.op == "t" and b.args[0] == a or a.op == "t" and a.args[0] == b:
            return True  # A*A', A'*A
        if a.op == "mul" and b.op == "t" and b.args[0] == a.args[0] and symmetric(a.args[1], names):
            return True  # (B*S)*B'
        if b.op == "mul" and a.op == "t" and a.args[0] == b.args[1] and symmetric(b.args[0], names):
            return True  # B'*(S*B)
        return False
    if t.op in ("add", "had", "hdiv"):
        return all(symmetric(a, names) for a in t.args)
    if t.op in ("scale", "epows"):
        return symmetric(t.args[1] if t.op == "scale" else t.args[0], names)
    if t.op in ("inv", "t", "fn", "mpow"):
        return t.shape[0] == t.shape[1] and symmetric(t.args[0], names)
    return False


def symmetric_transposes(t: Term, names: frozenset[str] = frozenset()) -> Term:
    """``t`` with the transposes of symmetric terms dropped (``inv(X'*X + lam*eye(n))'`` is
    ``inv(X'*X + lam*eye(n))``; ``names`` are variables declared symmetric), so that copies that
    differ only by them become like terms.

    >>> from rewrite.parse import parse
    >>> from rewrite.printing import to_text
    >>> sh = {"X": (4, 3), "lam": (), "y": (4,)}
    >>> to_text(symmetric_transposes(parse("X*inv(X'*X + lam*eye(3))'*X'*y", sh)))
    "X*inv(X'*X + lam*eye(3))*X'*y"
    """
    def drop(m: Term) -> Term:
        a = m.args[0] if m.op == "t" else None
        if a is not None and a.shape[0] == a.shape[1] and a.shape != (1, 1) and symmetric(a, names):
            return a
        return m

    return bottom_up(t, drop)


def gather_scalars(t: Term) -> Term:
    """``t`` with nested scalings of a matrix written as one: ``a*(b*M)`` is ``(a*b)*M`` for 1×1
    ``a``, ``b`` (so that :func:`hadamard_monomials` then merges powers across them).

    >>> from rewrite.parse import parse
    >>> from rewrite.printing import to_text
    >>> sh = {"X": (3, 3), "c": ()}
    >>> to_text(hadamard_monomials(gather_scalars(parse("det(X)*(det(X)^(-2/3)*(1/3*X))", sh))))
    '1/3*det(X)^(1/3)*X'
    """
    def step(m: Term) -> Term:
        if m.op == "scale" and m.args[1].op == "scale" and m.shape != (1, 1):
            inner = m.args[1]
            c = Term("scale", (m.args[0], inner.args[0]), None, (1, 1))
            return Term("scale", (c, inner.args[1]), None, m.shape)
        return m

    return bottom_up(t, step)


def strip_identities(t: Term) -> Term:
    """``t`` without the identities a derivation leaves behind: double transposes, transposes
    of 1×1 terms, products with an identity matrix, scalings by 1 and Hadamard products with
    the number 1 (where the other factor already has the result's shape).

    Simplification replaces what its tidy rules match, and rules that overlap on such debris
    (``X''`` under ``(A*B)'``, say) can leave a class with every e-node replaced; removed
    here first, the e-graph starts from the tidier term.

    >>> from rewrite.parse import parse
    >>> from rewrite.printing import to_text
    >>> sh = {"A": (2, 3), "X": (3, 2), "y": (3,)}
    >>> to_text(strip_identities(parse("A*eye(3)*X'' + 1*(A*X .* 1)'", sh)))
    "A*X + (A*X)'"
    >>> to_text(strip_identities(parse("(y'*y)'*y", sh)))
    "(y'*y)*y"
    """
    def step(m: Term) -> Term:
        a = m.args
        if m.op == "t" and (a[0].op == "t" or a[0].shape == (1, 1)):
            return a[0].args[0] if a[0].op == "t" else a[0]
        if m.op == "mul" and a[1].op == "eye":
            return a[0]
        if m.op == "mul" and a[0].op == "eye":
            return a[1]
        if m.op == "scale" and number(a[0]) == 1 and a[1].shape == m.shape:
            return a[1]
        if m.op == "had" and number(a[1]) == 1 and a[0].shape == m.shape:
            return a[0]
        if m.op == "had" and number(a[0]) == 1 and a[1].shape == m.shape:
            return a[1]
        return m

    return bottom_up(t, step)


def factor_common(t: Term) -> Term:
    """``t`` with the summands of each sum that end (or begin) with the same matrix factor
    gathered: ``P*x + Q*x`` is ``(P + Q)*x``, ``F*P + F*Q`` is ``F*(P + Q)`` (distributivity, the
    factoring the rules do, but in one pass where a long sum makes the e-graph's regroupings hit
    its node limit first). Summands that are not products, or share nothing, stay as they are.

    >>> from rewrite.parse import parse
    >>> from rewrite.printing import to_text
    >>> sh = {"A": (3, 3), "B": (3, 3), "C": (3, 3), "x": (3,)}
    >>> to_text(factor_common(parse("A*x + B'*x + C*x", sh)))
    "(A + B' + C)*x"
    >>> to_text(factor_common(parse("A*B + A*C*x*x' + B*C", sh)))
    "A*(B + C*x*x') + B*C"
    """
    def chain(x: Term) -> list[Term]:
        return chain(x.args[0]) + chain(x.args[1]) if x.op == "mul" else [x]

    def product(fs: list[Term]) -> Term:
        out = fs[0]
        for f in fs[1:]:
            out = Term("mul", (out, f), None, (out.shape[0], f.shape[1]))
        return out

    def total(xs: list[Term]) -> Term:
        out = xs[0]
        for x in xs[1:]:
            out = Term("add", (out, x), None, out.shape)
        return out

    def gather(m: Term, last: bool) -> Term:
        terms = summands(m)
        chains = [chain(x) for x in terms]
        groups: dict[Term, list[int]] = {}
        for i, c in enumerate(chains):
            if len(c) > 1:
                groups.setdefault(c[-1] if last else c[0], []).append(i)
        out: list[Term] = []
        done: set[int] = set()
        for i, x in enumerate(terms):
            if i in done:
                continue
            c = chains[i]
            group = groups.get((c[-1] if last else c[0]) if len(c) > 1 else None, [])
            if len(group) < 2:
                out.append(x)
                continue
            done.update(group)
            inner = total([product(chains[j][:-1] if last else chains[j][1:]) for j in group])
            f = c[-1] if last else c[0]
            out.append(Term("mul", (inner, f) if last else (f, inner), None, m.shape))
        return total(out)

    def step(m: Term) -> Term:
        if m.op != "add":
            return m
        out = gather(gather(m, True), False)
        return out if size(out) < size(m) else m

    return bottom_up(t, step)


def zero(shape: tuple) -> Term:
    """The zero of ``shape``: the number 0, or ``0*ones(m)*ones(n)'``."""
    z = Term("num", (), Fraction(0), (1, 1))
    return z if shape == (1, 1) else Term("scale", (z, Term("fill", (), shape, shape)), None, shape)


def propagate_zeros(t: Term) -> Term:
    """``t`` with products, Hadamard products, quotients, transposes, traces and sums of a zero
    written as a zero of their shape, and zero summands dropped (a gradient term that vanishes,
    such as the derivative of ``step``, leaves no ``0*...`` debris).

    >>> from rewrite.parse import parse
    >>> from rewrite.printing import to_text
    >>> sh = {"A": (2, 3), "B": (3, 2), "X": (2, 2)}
    >>> to_text(propagate_zeros(parse("0*A*B + X", sh))), to_text(propagate_zeros(parse("sum(0*A .* A)", sh)))
    ('X', '0')
    >>> to_text(propagate_zeros(parse("0*A*B", sh)))
    "0*ones(2)*ones(2)'"
    """
    def step(m: Term) -> Term:
        zeros = [is_zero(a) for a in m.args]
        if m.op == "scale" and is_zero(m) and m.args[1].op not in ("fill", "var", "t"):
            return zero(m.shape)  # 0*X and 0*X' stay: a zero gradient is printed that way
        if m.op == "add" and any(zeros):
            return m.args[1] if zeros[0] else m.args[0]
        if m.op in ("mul", "had", "t", "tr", "sum", "scale", "kron", "vec", "diag", "diagv") and any(zeros):
            return zero(m.shape)
        if m.op == "hdiv" and zeros[0]:
            return zero(m.shape)
        return m

    return bottom_up(t, step)

