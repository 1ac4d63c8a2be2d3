"""The e-graph layer, the only package that imports egglog: the schema generated from the
operator table (:mod:`~rewrite.egraph.schema`), terms and dimensions encoded for egglog
(:mod:`~rewrite.egraph.encode`), rules compiled to rewrites (:mod:`~rewrite.egraph.compile`),
programs loaded once and pooled (:mod:`~rewrite.egraph.program`), sessions that insert and
extract (:mod:`~rewrite.egraph.session`), one phase run under limits
(:mod:`~rewrite.egraph.run`) and the e-graph read back as data (:mod:`~rewrite.egraph.provenance`).
"""

from .encode import reads_back_as_itself
from .program import Program
from .run import run_phase
from .session import Session

__all__ = ["Program", "Session", "reads_back_as_itself", "run_phase"]
