"""The ``edgeaffect`` command: one ``app`` made of a module per stage (each a list of thin
commands that parse their arguments and call the layer below), plus the commands families
add (``Family.commands``). Any ``EdgeAffectError`` becomes one line on stderr and exit code 2.

Only typer and the standard library at import time: ``edgeaffect --help`` starts fast, and the
families are imported only when a command not built in is asked for (or listed)."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from edgeaffect import __version__
from edgeaffect.cli import demo, device, export, measure, papers, remote, roofline, train
from edgeaffect.cli._panels import FAMILY
from edgeaffect.errors import EdgeAffectError

# In the order `edgeaffect --help` shows their panels (the data's way: corpus -> device).
STAGES = (train, export, device, remote, measure, roofline, demo, papers)


class _WithFamilyCommands(TyperGroup):
    """The built-in commands, and each registered family's ``commands()``, added the first
    time a name is not among the built-in ones: only then do the families load (``edgeaffect
    --help`` lists the built-in commands; ``edgeaffect models`` names the families' own)."""

    _families_added = False

    def _add_family_commands(self) -> None:
        if self._families_added:
            return
        self._families_added = True
        from edgeaffect.contract import get_family, list_families

        for name in list_families():
            for fn in get_family(name).commands():
                info = typer.models.CommandInfo(callback=fn, rich_help_panel=FAMILY)
                cmd = typer.main.get_command_from_info(info, pretty_exceptions_short=True,
                                                       rich_markup_mode=self.rich_markup_mode)
                if cmd.name in self.commands:
                    raise EdgeAffectError(f"the {name} family's command '{cmd.name}' clashes with another command")
                self.add_command(cmd)

    def get_command(self, ctx, name):
        found = super().get_command(ctx, name)
        if found is None and not self._families_added:
            self._add_family_commands()
            found = super().get_command(ctx, name)
        return found


app = typer.Typer(cls=_WithFamilyCommands, add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False, help="Affective-computing models from the desktop to small devices.",
                  epilog="A model family may add commands of its own: `edgeaffect models` lists them.")
for _stage in STAGES:
    app.registered_commands += _stage.app.registered_commands
    app.registered_groups += _stage.app.registered_groups


def _version(value: bool):
    if value:
        typer.echo(f"edgeaffect {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                          help="Print the version and exit.")] = None,
          verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show what TensorFlow, tf2onnx and the "
                                                "runtimes log (hidden by default).")] = False):
    from edgeaffect.logs import set_verbose

    set_verbose(verbose or os.environ.get("EDGEAFFECT_VERBOSE") == "1")


def main() -> None:
    from edgeaffect.logs import filter_native_stderr, quiet_python

    # Before anything imports TensorFlow: its C++ start-up lines come first.
    if "--verbose" in sys.argv[1:2] or "-v" in sys.argv[1:2]:
        os.environ["EDGEAFFECT_VERBOSE"] = "1"
    filter_native_stderr()
    quiet_python()
    try:
        app()
    except EdgeAffectError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
