"""Q6 ``quota``: ``SPEC`` is its number, name and title (the one registry,
:mod:`etcdlab.questions.spec`); run.py measures it, analysis.py turns its samples into a
summary and findings, section.py and section.md.j2 present it in the report."""

from etcdlab.questions.spec import QuestionSpec

SPEC = QuestionSpec(
    6, "quota", "What --quota-backend-bytes does when it is reached, and how to recover")
