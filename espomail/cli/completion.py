"""``espomail completion``: the shell completion script (click's) for bash, zsh or fish."""

from __future__ import annotations

import click

SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("shell", type=click.Choice(SHELLS, case_sensitive=False))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    Completes command names, options and choices; it runs 'espomail' itself (with
    _ESPOMAIL_COMPLETE set) each time you press TAB, so it follows upgrades.

    \b
    Examples (install it):
      espomail completion bash > ~/.local/share/bash-completion/completions/espomail
      espomail completion zsh > "${fpath[1]}/_espomail"
      espomail completion fish > ~/.config/fish/completions/espomail.fish
    """
    from click.shell_completion import get_completion_class

    root = click.get_current_context().find_root()
    script_class = get_completion_class(shell.lower())
    if script_class is None:  # pragma: no cover - click knows all three
        raise click.BadParameter(f"no completion for {shell}")
    source = script_class(root.command, {}, root.info_name or "espomail", "_ESPOMAIL_COMPLETE").source()
    click.echo(source)


COMMANDS = [completion]
