"""Q8 ``lease-drift``: run.py measures it, analysis.py turns its samples into a summary and
findings, section.py and section.md.j2 present it in the report."""
