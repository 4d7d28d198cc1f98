"""What every command gets from one place, applied to the whole command tree when Typer
builds it (app._Guarded): each option settable from the environment, argument names in
capitals on the usage line, and examples at the end of --help (cli/examples.py)."""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument

from .examples import EXAMPLES

PREFIX = "FACECLUSTER"


class Argument(TyperArgument):
    """An argument named as the docs name it: ``scan [OPTIONS] PATHS...``, not Typer's
    ``{paths}...``; ``[NAME]`` when it may be left out."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar or (self.name or "").upper()

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


def env_names(option: Any, prefixes: tuple[str, ...]) -> list[str]:
    """FACECLUSTER_<COMMAND>_<OPTION> first (click's auto_envvar_prefix name, for one
    command), then each enclosing group's, then FACECLUSTER_<OPTION> (every command).
    OPTION is the long option's name: --min-cluster-size -> MIN_CLUSTER_SIZE."""
    longs = [o for o in option.opts if o.startswith("--")] or [option.name]
    key = max(longs, key=len).lstrip("-").upper().replace("-", "_")
    return [f"{prefix}_{key}" for prefix in prefixes]


def apply(group: Any, path: tuple[str, ...] = (), prefixes: tuple[str, ...] = (PREFIX,)) -> None:
    """Give every command under ``group`` the conventions above. An option declared with
    its own ``envvar`` keeps it (eval's --db must not read $FACECLUSTER_DB)."""
    for name, command in getattr(group, "commands", {}).items():
        words = (*path, name)
        own = (f"{PREFIX}_{'_'.join(words).upper().replace('-', '_')}", *prefixes)
        for param in command.params:
            if isinstance(param, TyperArgument):
                param.__class__ = Argument  # no state of its own: only how it is named
            elif param.envvar is None and not param.is_eager and param.expose_value:
                param.envvar = env_names(param, own)
                param.show_envvar = False  # the root --help says it once for all
        examples = EXAMPLES.get(" ".join(words))
        if examples and not command.epilog:
            command.epilog = "Examples:\n\n\b\n" + "\n".join(f"  {e}" for e in examples)
        apply(command, words, own)
