"""A cache on disk for what is slow to rebuild and depends only on files: the parsed stock rules
and the expression parser's tables.

Reading the stock rule files (lark for ~800 rule sides, sympy for the functions' derivatives)
takes ~0.45 s, every process; building the expression parser ~20 ms. An entry is a pickle whose
name is a digest of everything it is built from: the package's source, the files it reads, and
the versions of Python and of the libraries that read them. A changed input changes the name, so
a stale entry is never read. An entry that is missing, unreadable, or not its user's alone
(unpickling runs code) is rebuilt and written again, to a temporary file renamed into place (a
reader never sees half of one). Of the entries of one kind, the :data:`KEEP` most recently used
stay (so that installations of two versions sharing the directory do not evict each other) and
older ones are removed. Failing to write (a read-only home, say) only costs the time.

Where: ``TRACEGRAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/tracegrad``, else ``~/.cache/tracegrad``.
``TRACEGRAD_CACHE=0`` turns the cache off (so does having no home directory).

>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> calls = []
>>> build = lambda: calls.append(1) or {"answer": 42}
>>> load_or_build("demo", "k1", build, d), load_or_build("demo", "k1", build, d), len(calls)
({'answer': 42}, {'answer': 42}, 1)
>>> _ = load_or_build("demo", "k2", build, d)  # another digest: built too
>>> len(calls), sorted(p.name for p in d.iterdir())
(2, ['demo-k1.pickle', 'demo-k2.pickle'])
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
#: entries kept per kind (the most recently used; one of the stock rules is ~0.15 MB)
KEEP = 8
PACKAGE = Path(__file__).resolve().parent


def cache_dir() -> Path | None:
    """The cache directory (not created here), or None when ``TRACEGRAD_CACHE=0``."""
    if os.environ.get("TRACEGRAD_CACHE", "1").strip().lower() in ("0", "no", "off", "false"):
        return None
    explicit = os.environ.get("TRACEGRAD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):  # no home directory: no cache
            return None
    return Path(base) / "tracegrad"


def digest(files: Iterable[Path], libraries: Iterable[str] = ()) -> str:
    """A digest of the package's source, ``files`` (names and bytes), Python's version and the
    installed ``libraries`` (where their package file is, its size and time: any reinstall
    changes it; found without importing them, nor importlib.metadata, which takes ~16 ms).

    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "a.rules"
    >>> _ = f.write_text("x")
    >>> a = digest([f])
    >>> _ = f.write_text("y")
    >>> a == digest([f]), len(a)
    (False, 32)
    """
    from importlib.util import find_spec

    h = hashlib.sha256(sys.version.encode())
    for name in libraries:
        spec = find_spec(name)
        origin = spec.origin if spec is not None else None
        try:
            st = os.stat(origin) if origin else None
        except OSError:
            st = None
        h.update(f"{name}={origin}:{st and st.st_size}:{st and st.st_mtime_ns}".encode())
    for p in [*sorted(PACKAGE.glob("*.py")), *files]:
        h.update(b"\0" + p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:32]


def load_or_build(kind: str, key: str, build: Callable[[], T], where: Path | None = None) -> T:
    """The entry ``kind``-``key`` from the cache, or ``build()`` (then stored).

    ``where`` defaults to :func:`cache_dir`; with the cache off, this is ``build()``.
    """
    d = where if where is not None else cache_dir()
    if d is None:
        return build()
    path = d / f"{kind}-{key}.pickle"
    try:
        with open(path, "rb") as f:
            if _trusted(os.fstat(f.fileno())):
                value = pickle.load(f)
                _touch(path)
                return value
            log.debug("cache entry %s not owned by this user or writable by others; replacing it",
                      path)
    except FileNotFoundError:
        pass
    except Exception as e:  # a damaged entry, or one from code that no longer unpickles
        log.debug("cache entry %s unreadable (%s); rebuilding it", path, e)
    value = build()
    _store(d, kind, path, value)
    return value


def _trusted(st: os.stat_result) -> bool:
    """Whether an entry may be unpickled: this user's, and writable by no one else (unpickling
    runs code, so an entry someone else could have written is rebuilt instead)."""
    if not hasattr(os, "getuid"):  # pragma: no cover - no POSIX ownership (Windows)
        return True
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _touch(path: Path) -> None:
    """Mark an entry used (its modification time orders eviction)."""
    try:
        os.utime(path)
    except OSError:
        pass


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _store(d: Path, kind: str, path: Path, value) -> None:
    try:
        d.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{kind}-", suffix=".tmp", dir=d)
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        entries = sorted(d.glob(f"{kind}-*.pickle"), key=_mtime, reverse=True)
        for old in entries[KEEP:]:
            if old != path:
                old.unlink(missing_ok=True)
    except Exception as e:  # not writable, or not picklable: it only costs the time
        log.debug("cache entry %s not written (%s)", path, e)


__all__ = ["cache_dir", "digest", "load_or_build"]
