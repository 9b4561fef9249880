"""How each experiment appears in the report: one module per experiment, named after it.

``etcdlab.sections.<name>`` (dashes become underscores) defines ``charts(result, out_dir)
-> {chart key: PNG file name}`` and ``section(result, chart_files) -> dict``; the partial
``templates/sections/qNN_<name>.md.j2`` reads that dict as ``section.data``. Everything
shown is computed here from the saved samples and formatted with :mod:`etcdlab.figures.units`.
"""
