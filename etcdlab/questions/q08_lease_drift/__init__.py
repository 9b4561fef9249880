"""Q8 ``lease-drift``: ``SPEC`` is its number, name and title (the one registry,
:mod:`etcdlab.questions.spec`); run.py measures it, analysis.py turns its samples into a
summary and findings, section.py and section.md.j2 present it in the report."""

from etcdlab.questions.spec import QuestionSpec

SPEC = QuestionSpec(
    8, "lease-drift", "A client clock drifting 500 ms/min against etcd leases and locks")
