"""Optional positional arguments for invoke tasks: ``invoke heal [ID]``, ``invoke fault KIND
[TARGET]``.

invoke treats every positional argument as required: a task that declares one refuses to
run without it, with a parser message of its own. The playground's tasks take a positional
that may be left out (``invoke heal`` heals all, ``invoke heal ID`` one), and every bad or
missing one must be the task's own one ``error:`` line naming the valid values. So the
parser is taught, for the (task, argument) pairs registered here only, that a positional
left out is ``""``: it still takes the next bare word as the argument's value when given.
"""

from __future__ import annotations

from invoke.parser.parser import ParseMachine

_OPTIONAL: set[tuple[str, str]] = set()
_original = ParseMachine.complete_context


def _complete_context(self: ParseMachine) -> None:
    context = self.context
    if context is not None:
        for argument in context.positional_args:
            if argument.value is None and (context.name, argument.name) in _OPTIONAL:
                argument.set_value("", cast=False)
    _original(self)


def allow_missing(task: str, *arguments: str) -> None:
    """Let the positional ``arguments`` of ``task`` be left out (their value is then "")."""
    _OPTIONAL.update((task, argument) for argument in arguments)
    ParseMachine.complete_context = _complete_context  # type: ignore[method-assign]
