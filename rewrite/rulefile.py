"""Rule files: one rule per line, in the expression language, grouped by ruleset (docs/rules.md).

::

    ruleset trace                         # a stock ruleset (its phase is known)
    ruleset mine in close                 # a new ruleset joins a phase: expand, collect, close, tidy,
                                          # simplify
    tr-cyclic : tr(A*B) = tr(B*A)         # Matrix Cookbook (16)
    d-const   : d(C) => 0*C   if const(C)
    function softsign(x) = x/(1 + abs(x)); d/dx = 1/(1 + abs(x))^2

Single letters are pattern variables; ``{k - 1}`` on a right-hand side is a number computed
from numeric pattern variables; ``f(A)``/``f'(A)`` range over every declared function.

>>> rs = load_text("ruleset trace in close\\ntr-t : tr(A') = tr(A)\\n", "demo.rules")
>>> [r.name for r in rs.rules]
['tr-t']
>>> load_text("ruleset trace in close\\nbad : tr(A) => tr(B)\\n", "x.rules")
Traceback (most recent call last):
...
rewrite.errors.RuleFileError: x.rules:2:19: bad: variable B on the right-hand side is not bound on the left
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from .errors import ParseError, RuleFileError, ShapeError, TracegradError
from .functions import FunctionRegistry
from .parse import Elaborator
from .shapes import DimVar
from .terms import OPS, Term, post_order

PHASES = ("expand", "collect", "close", "tidy", "simplify")
# Phases whose rules are directed and replace what they match (egglog :subsume), except
# involutions such as A'' => A, which only add (see backend.compile_rules).
SUBSUMING_PHASES = ("expand", "tidy")
CONDITIONS = {"scalar": 1, "const": 1, "free": 1, "varying": 1, "square": 1, "vector": 1, "num": 1,
              "int": 1, "shape": 3}
_CMP = re.compile(r"^([A-Za-z])\s*(<=|>=|!=|==|<|>)\s*(-?\d+(?:\.\d+)?)$")
_NAME = re.compile(r"^\s*([A-Za-z][\w\-\[\]\.]*)\s*:(?!=)\s*")
_FUNC = re.compile(r"^\s*function\s+([A-Za-z_]\w*)\s*\(\s*x\s*\)\s*=\s*(.+)$")
_FUNVAR = re.compile(r"(?<![\w.])([fgh])('?)\(")


@dataclass(frozen=True)
class Condition:
    """A side condition: ``kind`` is a CONDITIONS key or ``cmp``; ``args`` its arguments."""

    kind: str
    args: tuple


@dataclass
class Rule:
    """A checked rule: typed pattern terms plus what the compiler needs to guard shapes."""

    name: str
    ruleset: str
    lhs: Term
    rhs: Term
    directed: bool
    conditions: tuple[Condition, ...]
    computed: dict[str, str]
    source: str
    line: int
    text: str
    citation: str = ""
    lhs_text: str = ""
    rhs_text: str = ""  # with computed numbers replaced by placeholders _c0, _c1, ...
    function_names: tuple[str, ...] = ()
    # a side's text → that side typed on its own (rewrite.rulefile.typed_alone; kept, so that
    # compiling the rule again, in another program or from the cache, does not parse it again)
    alone: dict[str, Term] = field(default_factory=dict, compare=False, repr=False)

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


@dataclass(frozen=True)
class FunctionTemplate:
    """A rule line ranging over declared functions (``f(A)``, ``f'(A)``), kept so that a function
    declared in a later file gets its instance too."""

    source: str
    line: int
    name: str
    ruleset: str
    body: str
    body_offset: int
    citation: str
    raw: str


@dataclass
class RuleSet:
    """Rules, ruleset phases and declared functions: everything the engine runs."""

    rules: list[Rule] = field(default_factory=list)
    phases: dict[str, str] = field(default_factory=dict)
    functions: FunctionRegistry = field(default_factory=FunctionRegistry)
    files: list[str] = field(default_factory=list)
    # rules written with f(...)/f'(...): instantiated for every function, also ones declared later
    templates: list[FunctionTemplate] = field(default_factory=list)

    def copy(self) -> RuleSet:
        return RuleSet(list(self.rules), dict(self.phases), self.functions.copy(), list(self.files),
                       list(self.templates))

    def in_phase(self, phase: str) -> list[Rule]:
        return [r for r in self.rules if self.phases[r.ruleset] == phase]

    def rulesets_in(self, phase: str) -> list[str]:
        return [n for n, p in self.phases.items() if p == phase]

    def key(self) -> tuple:
        return tuple((r.ruleset, r.name, r.text) for r in self.rules) + tuple(
            sorted(self.phases.items())) + tuple(self.functions.names())


def _strip_comment(line: str) -> tuple[str, str]:
    if "#" in line:
        i = line.index("#")
        return line[:i], line[i + 1:].strip()
    return line, ""


def _split_top(text: str, sep: str) -> list[tuple[int, str]]:
    """Split at ``sep`` outside parentheses; returns (offset, piece) pairs."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            out.append((start, text[start:i]))
            i += len(sep)
            start = i
            continue
        i += 1
    out.append((start, text[start:]))
    return out


def _unbalanced(text: str) -> int | None:
    """Offset of the first bracket without a partner, or None.

    >>> _unbalanced("tr(A)) = tr(A)"), _unbalanced("tr(A = A"), _unbalanced("A^{k - 1}")
    (5, 2, None)
    """
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch in "({":
            stack.append(i)
        elif ch in ")}":
            if not stack or "({"[")}".index(ch)] != text[stack[-1]]:
                return i
            stack.pop()
    return stack[0] if stack else None


def _find_if(text: str) -> int:
    depth = 0
    for m in re.finditer(r"[(){}]|\bif\b", text):
        tok = m.group(0)
        if tok in "({":
            depth += 1
        elif tok in ")}":
            depth -= 1
        elif depth == 0:
            return m.start()
    return -1


def _matching_paren(text: str, open_idx: int) -> int:
    depth = 0
    for i in range(open_idx, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _instantiate_function_vars(body: str, fname: str, registry: FunctionRegistry) -> str:
    """Replace ``f(``/``f'(`` by the function ``fname`` and its derivative."""
    out = body
    while True:
        m = _FUNVAR.search(out)
        if not m:
            return out
        if m.group(2):  # derivative
            close = _matching_paren(out, m.end() - 1)
            if close < 0:
                raise RuleFileError("unbalanced parentheses after f'")
            arg = out[m.end():close]
            out = out[:m.start()] + "(" + registry[fname].derivative_text(arg) + ")" + out[close + 1:]
        else:
            out = out[:m.start()] + fname + "(" + out[m.end():]


class _Loader:
    def __init__(self, target: RuleSet, source: str) -> None:
        self.rs = target
        self.source = source
        self.current: str | None = None
        self.names = {r.name for r in target.rules}

    def error(self, line: int, col: int, name: str | None, msg: str) -> RuleFileError:
        prefix = f"{name}: " if name else ""
        return RuleFileError(f"{prefix}{msg}", position=(line, col), source=self.source)

    def load(self, text: str) -> None:
        lines = text.splitlines()
        before = set(self.rs.functions.names())
        declared: list[tuple[int, str]] = []
        # functions first, so that rules anywhere in the file may use them
        for no, raw in enumerate(lines, 1):
            body, _ = _strip_comment(raw)
            m = _FUNC.match(body)
            if m:
                self.function(no, m.group(1), m.group(2))
                declared.append((no, m.group(1)))
            elif body.strip().startswith("function"):
                raise self.error(no, 1, None, "malformed declaration; expected "
                                 "'function NAME(x) = DEFINITION[; d/dx = DERIVATIVE]'")
        for no, fname in declared:
            try:
                self.rs.functions.check_writable(fname)
            except RuleFileError as e:
                raise self.error(no, 1, fname, e.message) from None
        for no, raw in enumerate(lines, 1):
            body, citation = _strip_comment(raw)
            if not body.strip() or _FUNC.match(body):
                continue
            words = body.split()
            if words[0] == "ruleset":
                self.header(no, words)
                continue
            self.rule_line(no, raw, body, citation)
        new = [f for f in self.rs.functions.names() if f not in before]
        for tpl in [t for t in self.rs.templates if t.source != self.source]:
            for fname in new:  # earlier files' f(...) rules, for functions declared here
                self.instantiate(tpl, fname)

    def instantiate(self, tpl: FunctionTemplate, fname: str) -> None:
        saved = self.source, self.current
        self.source, self.current = tpl.source, tpl.ruleset
        try:
            try:
                inst = _instantiate_function_vars(tpl.body, fname, self.rs.functions)
            except RuleFileError as e:
                raise self.error(tpl.line, tpl.body_offset + 1, tpl.name, e.message) from None
            self.rule(tpl.line, f"{tpl.name}[{fname}]", inst, None, tpl.citation, tpl.raw)
        finally:
            self.source, self.current = saved

    def function(self, no: int, name: str, rest: str) -> None:
        parts = [p.strip() for p in rest.split(";")]
        definition, deriv = parts[0], None
        for p in parts[1:]:
            m = re.match(r"^d/dx\s*=\s*(.+)$", p)
            if not m:
                raise self.error(no, 1, name, f"expected 'd/dx = ...' after ';', got {p!r}")
            deriv = m.group(1)
        try:
            self.rs.functions.declare(name, definition, deriv, source=f"{self.source}:{no}")
        except RuleFileError as e:
            raise self.error(no, 1, name, e.message) from None

    def header(self, no: int, words: list[str]) -> None:
        if len(words) == 2:
            name = words[1]
            if name not in self.rs.phases:
                raise self.error(no, 9, None, f"unknown ruleset {name!r}; declare a new one with "
                                 f"'ruleset {name} in PHASE' (PHASE: {', '.join(PHASES)})")
        elif len(words) == 4 and words[2] == "in":
            name, phase = words[1], words[3]
            if phase not in PHASES:
                raise self.error(no, 1, None, f"unknown phase {phase!r} (one of {', '.join(PHASES)})")
            old = self.rs.phases.get(name)
            if old is not None and old != phase:
                raise self.error(no, 1, None, f"ruleset {name!r} already runs in phase {old!r}")
            self.rs.phases[name] = phase
        else:
            raise self.error(no, 1, None, "expected 'ruleset NAME' or 'ruleset NAME in PHASE'")
        if not re.match(r"^[A-Za-z][\w\-]*$", name):
            raise self.error(no, 9, None, f"bad ruleset name {name!r}")
        self.current = name

    def rule_line(self, no: int, raw: str, body: str, citation: str) -> None:
        m = _NAME.match(body)
        if not m:
            raise self.error(no, 1, None, "expected 'name : lhs = rhs' or 'name : lhs => rhs'")
        name = m.group(1)
        if self.current is None:
            raise self.error(no, 1, name, "rule before any 'ruleset NAME' line")
        rest_off = m.end()
        rest = body[rest_off:]
        if _FUNVAR.search(rest):
            if not self.rs.functions.names():
                raise self.error(no, 1, name, "f(...) ranges over declared functions; none are declared")
            tpl = FunctionTemplate(self.source, no, name, self.current, rest, rest_off, citation, raw)
            self.rs.templates.append(tpl)
            for fname in self.rs.functions.names():
                self.instantiate(tpl, fname)
        else:
            self.rule(no, name, rest, rest_off, citation, raw)

    def rule(self, no, name, rest, rest_off, citation, raw) -> None:
        def col(off: int) -> int:
            return (rest_off + off + 1) if rest_off is not None else 1

        if name in self.names:
            raise self.error(no, 1, name, "duplicate rule name")
        self.names.add(name)
        bad = _unbalanced(rest)
        if bad is not None:
            raise self.error(no, col(bad), name, f"unbalanced {rest[bad]!r}")
        cond_text = ""
        k = _find_if(rest)
        eq_text = rest if k < 0 else rest[:k]
        if k >= 0:
            cond_text = rest[k + 2:]
        parts = _split_top(eq_text, "=>")
        directed = len(parts) == 2
        if len(parts) > 2:
            raise self.error(no, col(0), name, "more than one '=>'")
        if not directed:
            parts = _split_top(eq_text, "=")
            if len(parts) != 2:
                raise self.error(no, col(0), name, "expected exactly one '=' or '=>'")
        (loff, lhs_text), (roff, rhs_text) = parts
        if not lhs_text.strip() or not rhs_text.strip():
            raise self.error(no, col(roff if lhs_text.strip() else loff), name, "empty side")
        phase = self.rs.phases[self.current]
        if phase in SUBSUMING_PHASES and not directed:
            raise self.error(no, col(0), name, f"rules of a {phase}-phase ruleset must be directed (=>)")
        conds = self.conditions(no, name, cond_text, col(k + 2) if k >= 0 else 1)
        computed: dict[str, str] = {}

        def brace(mt: re.Match) -> str:
            key = f"_c{len(computed)}"
            computed[key] = mt.group(1)
            return key

        if "{" in lhs_text:
            raise self.error(no, col(loff + lhs_text.index("{")), name,
                             "computed numbers {...} are allowed only on a right-hand side")
        rhs_sub = re.sub(r"\{([^{}]*)\}", brace, rhs_text)
        if not directed and computed:
            raise self.error(no, col(roff), name, "an equation cannot compute numbers; use '=>'")
        el = rule_elaborator(self.rs.functions.names(), conds, computed)
        try:
            lhs = el.elaborate(lhs_text)
        except TracegradError as e:
            raise self._at(e, no, col(loff), name, "left") from None
        lhs_vars = _pvars(lhs)
        for c in conds:
            if c.args[0] not in lhs_vars:
                raise self.error(no, col(k + 2), name,
                                 f"condition on {c.args[0]}, which is not on the left-hand side")
        rhs_alone = None
        if not directed:
            # the reverse direction needs the RHS to bind every LHS variable
            el2 = rule_elaborator(self.rs.functions.names(),
                                  [c for c in conds if c.kind != "shape"], ())
            try:
                rhs_alone = el2.elaborate(rhs_sub)
            except TracegradError as e:
                raise self._at(e, no, col(roff), name, "right") from None
            missing = sorted(lhs_vars - _pvars(rhs_alone))
            if missing:
                raise self.error(no, col(loff), name, f"variable {missing[0]} on the left-hand side is "
                                 "not bound on the right (needed for the reverse direction)")
        try:
            rhs = el.elaborate(rhs_sub)
        except ShapeError as e:
            raise self.error(no, col(roff) + ((e.position[1] - 1) if e.position else 0), name,
                             f"the two sides cannot have the same shape: {e.message}") from None
        except TracegradError as e:
            raise self._at(e, no, col(roff), name, "right") from None
        unbound = sorted(_pvars(rhs) - lhs_vars - set(computed))
        if unbound:
            pos = _var_offset(rhs_sub, unbound[0])
            raise self.error(no, col(roff + pos), name,
                             f"variable {unbound[0]} on the right-hand side is not bound on the left")
        if not (el.u.unify(lhs.shape[0], rhs.shape[0]) and el.u.unify(lhs.shape[1], rhs.shape[1])):
            raise self.error(no, col(roff), name, "the two sides cannot have the same shape: "
                             f"{el.shape_str(lhs.shape)} and {el.shape_str(rhs.shape)}")
        for expr in computed.values():
            for v in re.findall(r"[A-Za-z_]\w*", expr):
                if v not in {c.args[0] for c in conds if c.kind in ("num", "int", "cmp")}:
                    raise self.error(no, col(roff), name, f"{{{expr}}} uses {v}, which is not a "
                                     "numeric pattern variable (add num(...) or int(...))")
        lhs, rhs = el.resolve(lhs), el.resolve(rhs)
        if lhs == rhs:
            raise self.error(no, col(0), name, "both sides are the same")
        rule = Rule(
            name=name, ruleset=self.current, lhs=lhs, rhs=rhs, directed=directed,
            conditions=tuple(conds), computed=computed, source=self.source, line=no,
            text=raw.strip(), citation=citation, lhs_text=lhs_text, rhs_text=rhs_sub,
            function_names=tuple(self.rs.functions.names()))
        # What only compiling finds, such as a right-hand dimension the left does not
        # determine, is reported here, at its line.
        try:
            check_compilable(rule)
        except TracegradError as e:
            msg = e.message
            if "not determined" in msg:
                msg += ("; a product such as the length of vec(A) is not split into its factors: "
                        "make it a directed rule (=>) in the direction that works")
            raise self.error(no, col(loff if "left-hand side is not" in msg else roff), name,
                             msg) from None
        self.rs.rules.append(rule)

    def _at(self, e: TracegradError, no: int, base_col: int, name: str, side: str) -> RuleFileError:
        c = base_col + ((e.position[1] - 1) if e.position else 0)
        msg = e.message
        if isinstance(e, (ParseError, ShapeError)):
            msg = f"{side}-hand side: {msg}"
        return self.error(no, c, name, msg)

    def conditions(self, no: int, name: str, text: str, col: int) -> list[Condition]:
        out: list[Condition] = []
        if not text.strip():
            if text:
                raise self.error(no, col, name, "'if' without conditions")
            return out
        for _, piece in _split_top(text, ","):
            p = piece.strip()
            m = _CMP.match(p)
            if m:
                out.append(Condition("cmp", (m.group(1), m.group(2), Fraction(m.group(3)))))
                continue
            m = re.match(r"^([a-z]+)\s*\(([^()]*)\)$", p)
            if not m or m.group(1) not in CONDITIONS:
                known = ", ".join(f"{k}(...)" for k in CONDITIONS)
                raise self.error(no, col, name, f"unknown condition {p!r}; known: {known}, k > 0")
            args = tuple(a.strip() for a in m.group(2).split(","))
            if len(args) != CONDITIONS[m.group(1)] or not all(args):
                raise self.error(no, col, name, f"{m.group(1)}() takes {CONDITIONS[m.group(1)]} "
                                 "argument(s)")
            if len(args[0]) != 1:
                raise self.error(no, col, name, f"{m.group(1)}() applies to a pattern variable")
            out.append(Condition(m.group(1), args))
        return out


def _pvars(t: Term) -> set[str]:
    out, stack = set(), [t]
    while stack:
        n = stack.pop()
        if n.op == "pvar":
            out.add(n.attr)
        stack.extend(n.args)
    return out


def _dimvars(t: Term) -> set[DimVar]:
    out, stack = set(), [t]
    while stack:
        n = stack.pop()
        out.update(d for d in n.shape if isinstance(d, DimVar))
        if OPS[n.op].attr == "dims":
            out.update(d for d in n.attr if isinstance(d, DimVar))
        stack.extend(n.args)
    return out


def _var_offset(text: str, v: str) -> int:
    m = re.search(rf"(?<![\w.]){re.escape(v)}(?!\w)", text)
    return m.start() if m else 0


def load_text(text: str, source: str = "<rules>", base: RuleSet | None = None) -> RuleSet:
    """Load rule-file text on top of ``base`` (a copy is made); errors are RuleFileError."""
    rs = base.copy() if base is not None else RuleSet()
    try:
        _Loader(rs, source).load(text)
    except RuleFileError as e:  # the file's text, for showing the line with a caret
        if e.position is not None and e.text is None:
            e.text = text
        raise
    rs.files.append(source)
    return rs


def load_file(path: str | Path, base: RuleSet | None = None) -> RuleSet:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RuleFileError(f"cannot read rule file: {e}", source=str(path)) from None
    return load_text(text, p.name if base is None or not base.files else str(path), base)


# --------------------------------------------------------------- what compiling needs ----
def numeric_vars(rule: Rule) -> set[str]:
    """The rule's numeric pattern variables (bound to numbers, not to matrices)."""
    return {c.args[0] for c in rule.conditions if c.kind in ("num", "int", "cmp")}


def typed_alone(rule: Rule, text: str) -> Term:
    """The side ``text`` of ``rule`` typed on its own, without the other side's constraints
    (memoized on the rule): the shapes a match of that side implies by itself."""
    t = rule.alone.get(text)
    if t is None:
        el = rule_elaborator(rule.function_names, rule.conditions, rule.computed)
        t = rule.alone[text] = el.elaborate(text)
    return t


def rule_elaborator(functions: Iterable[str], conds: Iterable[Condition],
                    computed: Iterable[str]) -> Elaborator:
    """An elaborator for the sides of a rule: pattern variables typed by the side conditions
    (scalar, vector, square, shape) and the computed numbers 1×1."""
    conds = tuple(conds)
    el = Elaborator(None, functions, rule_mode=True,
                    scalars=[c.args[0] for c in conds if c.kind in ("scalar", "num", "int", "cmp")],
                    vectors=[c.args[0] for c in conds if c.kind == "vector"],
                    squares=[c.args[0] for c in conds if c.kind == "square"])
    for key in computed:
        el.env[key] = (1, 1)
    for c in conds:
        if c.kind == "shape":
            v, m_, n_ = c.args
            el.env.setdefault(v, (el.u.fresh(), el.u.fresh()))
            el.u.unify(el.env[v][0], el.u.dim(m_))
            el.u.unify(el.env[v][1], el.u.dim(n_))
    return el


def dimension_keys(t: Term) -> list[tuple[tuple, object]]:
    """(key, dim) for every pattern-variable axis (``("v", name, axis)``) and dimension attribute
    (``("a", path, i)``) of ``t``, in a fixed order."""
    out: list[tuple[tuple, object]] = []

    def go(n: Term, path: tuple) -> None:
        if n.op == "pvar":
            out.append((("v", n.attr, 0), n.shape[0]))
            out.append((("v", n.attr, 1), n.shape[1]))
        if OPS[n.op].attr == "dims":
            for i, d in enumerate(n.attr):
                out.append((("a", path, i), d))
        for i, a in enumerate(n.args):
            go(a, (*path, i))

    go(t, ())
    return out


def computed_tree(expr: str, numvars: set[str]) -> ast.expr:
    """The parsed computed number ``{expr}``: numbers and numeric pattern variables combined
    with ``+ - * /`` and negation; anything else is a TracegradError.

    >>> computed_tree("k - 1", {"k"}).op.__class__.__name__
    'Sub'
    >>> computed_tree("k ** 2", {"k"})
    Traceback (most recent call last):
    ...
    rewrite.errors.TracegradError: cannot compute {k ** 2}
    """
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError:
        raise TracegradError(f"cannot read computed number {{{expr}}}") from None

    def ok(n: ast.expr) -> bool:
        if isinstance(n, ast.BinOp):
            return isinstance(n.op, ARITHMETIC) and ok(n.left) and ok(n.right)
        if isinstance(n, ast.UnaryOp):
            return isinstance(n.op, ast.USub) and ok(n.operand)
        if isinstance(n, ast.Constant):
            return isinstance(n.value, (int, float)) and not isinstance(n.value, bool)
        return isinstance(n, ast.Name) and n.id in numvars

    if not ok(tree):
        raise TracegradError(f"cannot compute {{{expr}}}")
    return tree


#: the operators a computed number may use
ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def undetermined(rule: Rule, reverse: bool = False) -> bool:
    """Whether a dimension the right-hand side builds (``ones(m)``, ``eye(n)``: its dimension
    attributes) is not bound by the left-hand side's match (``reverse``: the equation read
    right to left)."""
    pat, tmpl = (rule.rhs, rule.lhs) if reverse else (rule.lhs, rule.rhs)
    numvars = numeric_vars(rule)
    bound = {d for key, d in dimension_keys(pat) if key[0] == "a" or key[1] not in numvars}
    return any(not isinstance(d, int) and d not in bound
               for key, d in dimension_keys(tmpl) if key[0] == "a")


def check_compilable(rule: Rule) -> None:
    """Raise a TracegradError naming what an e-graph compiler could not turn into a rewrite:
    a built dimension no match determines, or a computed number it cannot evaluate."""
    for expr in rule.computed.values():
        computed_tree(expr, numeric_vars(rule))
    for reverse in ((False,) if rule.directed else (False, True)):
        if undetermined(rule, reverse):
            made, given = ("left", "right") if reverse else ("right", "left")
            raise TracegradError(f"a dimension on the {made}-hand side is not determined by the "
                                 f"{given}-hand side"
                                 + (" (the equation read right to left)" if reverse else ""))


# ------------------------------------------------------------------- what can match ----
@dataclass(frozen=True)
class Reach:
    """The rules that can ever match in a run that starts from terms with the operators
    ``start``, and the operators that can then occur (``ops``): see :func:`reach`."""

    rules: frozenset[str]
    ops: frozenset[str]


def operators(t: Term) -> set[str]:
    """The operators of ``t`` (pattern variables left out)."""
    return {n.op for n in post_order(t) if n.op != "pvar"}


def reach(rs: RuleSet, phases: Iterable[str], start: Iterable[str]) -> Reach:
    """The rules of ``phases`` that can match, starting from the operators ``start``: a rule
    joins when every operator of its left-hand side (of either side, for an equation) can
    occur, and the operators its other side builds can occur from then on, to a fixpoint.
    A rule left out can never match (a pattern variable matches any term, so only the
    operators a pattern names are required).

    >>> from rewrite.stock import stock_ruleset
    >>> r = reach(stock_ruleset(), ("expand", "collect"), {"grad", "d", "adj", "tr", "mul", "var"})
    >>> "d-mul" in r.rules, "d-kron" in r.rules, "kron" in r.ops
    (True, False, False)
    """
    wanted = set(phases)
    sides = [(r.name, operators(r.lhs), operators(r.rhs), r.directed) for r in rs.rules
             if rs.phases[r.ruleset] in wanted]
    have, chosen = set(start), set()
    grew = True
    while grew:
        grew = False
        for name, lhs, rhs, directed in sides:
            if name in chosen:
                continue
            if lhs <= have:
                chosen.add(name)
                have |= rhs
                grew = True
            elif not directed and rhs <= have:
                chosen.add(name)
                have |= lhs
                grew = True
    return Reach(frozenset(chosen), frozenset(have))


def may_match(rules: Iterable[Rule], t: Term) -> bool:
    """Whether a rule of ``rules`` may match a subterm of the ground term ``t`` by itself: its
    left-hand side (either side, for an equation) matches the subterm syntactically, and the
    side conditions that the subterm's shapes decide (``scalar``, ``vector``, ``num``, ``int``)
    hold; the others (``const``, comparisons, ...) are taken to hold. False means that a run of
    ``rules`` on an e-graph holding only ``t`` can change nothing (no rule ever matches).

    >>> from rewrite.stock import parse, stock_ruleset
    >>> tidy = [r for r in stock_ruleset().rules if r.ruleset == "tidy"]
    >>> sh = {"A": (4, 3), "X": (3, 4), "c": ()}
    >>> [may_match(tidy, parse(e, sh)) for e in ("tr(A*X)", "tr(A*X'')", "c'*tr(A*X)")]
    [False, True, True]
    """
    nodes = post_order(t)
    by_op: dict[str, list[Term]] = {}  # a side can only match a node of its root's operator
    for n in nodes:
        by_op.setdefault(n.op, []).append(n)
    for r in rules:
        for side in (r.lhs,) if r.directed else (r.lhs, r.rhs):
            for n in nodes if side.op == "pvar" else by_op.get(side.op, ()):
                bound: dict[str, Term] = {}
                if pattern_matches(side, n, bound) and conditions_may_hold(r, bound):
                    return True
    return False


def pattern_matches(p: Term, t: Term, bound: dict[str, Term]) -> bool:
    """Whether the pattern ``p`` matches the ground term ``t`` syntactically, binding its
    pattern variables in ``bound`` (a repeated one must match equal terms); dimensions of
    ``eye``/``ones``/``fill`` in a pattern match any."""
    if p.op == "pvar":
        if p.attr in bound:
            return bound[p.attr] == t
        bound[p.attr] = t
        return True
    if p.op != t.op or len(p.args) != len(t.args):
        return False
    if p.op in ("num", "fn") and p.attr != t.attr:
        return False
    return all(pattern_matches(a, b, bound) for a, b in zip(p.args, t.args, strict=True))


def conditions_may_hold(rule: Rule, bound: dict[str, Term]) -> bool:
    """Whether the side conditions of ``rule`` that the shapes of the bound terms decide hold
    (the others are taken to hold)."""
    for c in rule.conditions:
        v = bound.get(c.args[0]) if c.args else None
        if not isinstance(v, Term):
            continue
        if (c.kind == "scalar" and v.shape != (1, 1)) or (c.kind == "vector" and v.shape[1] != 1) \
                or (c.kind in ("num", "int") and v.op != "num"):
            return False
    return True
