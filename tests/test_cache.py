"""The on-disk cache of the parsed stock rules (rewrite.cache)."""

import os
import pickle
import subprocess
import sys
import textwrap

import pytest

from rewrite import cache
from rewrite.rulefile import load_text
from rewrite.shapes import DimVar
from rewrite.stock import READERS, read_stock_ruleset, stock_ruleset
from rewrite.terms import Term


def canon(*terms: Term) -> tuple:
    """The terms with every unknown dimension renamed by order of appearance (a DimVar is
    compared by identity)."""
    names: dict[DimVar, str] = {}

    def dims(ds) -> tuple:
        return tuple(names.setdefault(d, f"?{len(names)}") if isinstance(d, DimVar) else d
                     for d in ds)

    def go(t: Term) -> tuple:
        attr = dims(t.attr) if isinstance(t.attr, tuple) else t.attr
        return (t.op, attr, dims(t.shape), tuple(go(a) for a in t.args))

    return tuple(go(t) for t in terms)


def test_unpickled_terms_hash_like_new_ones():
    back = pickle.loads(pickle.dumps(stock_ruleset()))
    for r in back.rules:
        for t in (r.lhs, r.rhs):
            assert hash(t) == hash(Term(t.op, t.args, t.attr, t.shape))


def test_cached_rules_equal_rules_read_from_the_files():
    back = pickle.loads(pickle.dumps(stock_ruleset()))
    fresh = read_stock_ruleset()
    assert back.key() == fresh.key()
    assert back.phases == fresh.phases and back.files == fresh.files
    assert [canon(r.lhs, r.rhs) + (r.conditions,) for r in back.rules] == \
        [canon(r.lhs, r.rhs) + (r.conditions,) for r in fresh.rules]
    for name in fresh.functions.names():
        a, b = back.functions[name], fresh.functions[name]
        assert (a.definition, a.derivative, a.expanded) == (b.definition, b.derivative, b.expanded)
        assert a.derivative_text("A") == b.derivative_text("A")
        assert a.numpy()(0.3) == pytest.approx(b.numpy()(0.3), rel=1e-15)


def test_unpickled_registry_still_declares_and_copies():
    back = pickle.loads(pickle.dumps(stock_ruleset()))
    reg = back.functions.copy()
    reg.declare("cube", "x**3 + softplus(x)")
    assert reg["cube"].derivative_text("A") == read_stock_ruleset().functions.copy().declare(
        "cube", "x**3 + softplus(x)").derivative_text("A")
    # a user rule file on top of the unpickled stock rules
    rs = load_text("ruleset simplify\nsig-def: sigmoid(A) = 1 ./ (1 + exp(-A))", "user.rules", back)
    assert any(r.name == "sig-def" for r in rs.rules)


def test_entry_is_reused_and_rebuilt_when_damaged(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return ["value", len(calls)]

    assert cache.load_or_build("k", "a", build, tmp_path) == ["value", 1]
    assert cache.load_or_build("k", "a", build, tmp_path) == ["value", 1]
    (tmp_path / "k-a.pickle").write_bytes(b"not a pickle")
    assert cache.load_or_build("k", "a", build, tmp_path) == ["value", 2]
    assert cache.load_or_build("k", "a", build, tmp_path) == ["value", 2]  # rewritten
    (tmp_path / "k-a.pickle").write_bytes(pickle.dumps(["value", 2])[:-3])  # truncated
    assert cache.load_or_build("k", "a", build, tmp_path) == ["value", 3]
    assert cache.load_or_build("k", "b", build, tmp_path) == ["value", 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k-a.pickle", "k-b.pickle"]  # no temporary


def test_least_recently_used_entries_are_evicted(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "KEEP", 3)
    for i, key in enumerate("abc"):
        cache.load_or_build("k", key, lambda key=key: key, tmp_path)
        os.utime(tmp_path / f"k-{key}.pickle", (1000 + i, 1000 + i))  # a oldest, c newest
    assert cache.load_or_build("k", "a", lambda: "rebuilt", tmp_path) == "a"  # a hit: used now
    cache.load_or_build("k", "d", lambda: "d", tmp_path)  # a fourth: b, the least recent, goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k-a.pickle", "k-c.pickle", "k-d.pickle"]
    assert cache.load_or_build("k", "b", lambda: "rebuilt", tmp_path) == "rebuilt"


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX file ownership")
def test_entry_writable_by_others_is_not_unpickled(tmp_path):
    """Unpickling runs code: an entry another user could have written is rebuilt instead."""
    entry = tmp_path / "k-a.pickle"
    entry.write_bytes(pickle.dumps("planted"))
    entry.chmod(0o666)
    assert cache.load_or_build("k", "a", lambda: "built", tmp_path) == "built"
    assert oct(entry.stat().st_mode & 0o777) == "0o600"
    assert cache.load_or_build("k", "a", lambda: "again", tmp_path) == "built"


def test_no_home_directory_means_no_cache(monkeypatch):
    monkeypatch.delenv("TRACEGRAD_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(cache.Path, "home", staticmethod(no_home))
    assert cache.cache_dir() is None


def test_a_value_that_cannot_be_pickled_is_returned_all_the_same(tmp_path):
    assert cache.load_or_build("k", "a", lambda: (lambda: 3), tmp_path)() == 3
    assert list(tmp_path.iterdir()) == []  # and nothing half-written is left


def test_unwritable_directory_costs_only_time(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    assert cache.load_or_build("k", "a", lambda: 7, blocker / "sub") == 7
    assert blocker.read_text().startswith("a file")


def test_location_and_switch(monkeypatch, tmp_path):
    monkeypatch.setenv("TRACEGRAD_CACHE_DIR", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TRACEGRAD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "tracegrad"
    monkeypatch.setenv("TRACEGRAD_CACHE", "0")
    assert cache.cache_dir() is None
    assert cache.load_or_build("k", "a", lambda: 5) == 5
    assert not (tmp_path / "xdg").exists()


def test_digest_follows_the_rule_files_and_readers(tmp_path):
    f = tmp_path / "x.rules"
    f.write_text("ruleset simplify\n")
    a = cache.digest([f], READERS)
    assert a == cache.digest([f], READERS)
    f.write_text("ruleset simplify\n# a comment\n")
    assert a != cache.digest([f], READERS)
    assert cache.digest([f], READERS) != cache.digest([f], ())


def run_python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_a_new_process_reads_the_cache_and_differentiates_without_sympy(tmp_path):
    env = {**os.environ, "TRACEGRAD_CACHE_DIR": str(tmp_path)}
    code = """
        import sys
        import rewrite
        sh = {"X": ("n", "k"), "A": ("n", "n")}
        g = rewrite.gradient("tr(X'*A*X) + tr(A)*sum(X)", "X", sh)
        without = "sympy" not in sys.modules
        # an elementwise function needs sympy only to evaluate it numerically (lambdify)
        h = rewrite.gradient("sum(softplus(A*X))", "X", sh)
        print(g, h, without)
    """
    first = run_python(code, env)
    assert first.returncode == 0, first.stderr
    entries = list(tmp_path.glob("stock-rules-*.pickle"))
    assert len(entries) == 1
    second = run_python(code, env)
    assert second.returncode == 0, second.stderr
    # the same gradient; the second process never needed sympy (0.35 s to import)
    assert first.stdout.split()[:-1] == second.stdout.split()[:-1]
    assert second.stdout.split()[-1] == "True"
    assert list(tmp_path.glob("stock-rules-*.pickle")) == entries
