"""A family's own training options on the command line: ``--NAME VALUE`` or ``--NAME=VALUE``,
``--FLAG`` / ``--no-FLAG`` for a flag (``Family.train_options``). The commands that take them
leave unknown options to click (``FAMILY_OPTIONS``) and hand the rest to ``family_options``."""

from __future__ import annotations

from edgeaffect.errors import InputError

# context_settings of a command that takes its model's family options.
FAMILY_OPTIONS = {"allow_extra_args": True, "ignore_unknown_options": True}


def family_options(family, args: list[str]) -> dict:
    """Option name -> value, parsed by each option's type; an option the family does not have
    is refused by name (as ``Family.check_options`` words it)."""
    options, rest = {}, list(args)
    while rest:
        token = rest.pop(0)
        if not token.startswith("--"):
            raise InputError(f"unexpected argument '{token}' (options go as --NAME VALUE)")
        name, given, value = token[2:].partition("=")
        key = name.replace("-", "_")
        negated = key.startswith("no_") and key not in family.train_options and key[3:] in family.train_options
        key = key[3:] if negated else key
        option = family.train_options.get(key)
        if option is None:
            family.check_options({key: True})  # raises, naming the option and the family's
            raise InputError(f"--{name} is not an option of the {family.name} family")
        if option.is_flag:
            options[key] = (not negated) if not given else option.parse(key, value)
            continue
        if not given:
            if not rest:
                raise InputError(f"--{name} needs a value")
            value = rest.pop(0)
        options[key] = option.parse(key, value)
    return options


def options_help() -> str:
    """Each registered family's training options, for ``train --help`` (loads the families)."""
    from edgeaffect.contract import get_family, list_families

    parts = []
    for name in list_families():
        family = get_family(name)
        for key, option in family.train_options.items():
            flag = "--" + key.replace("_", "-")
            parts.append(f"{flag}{'' if option.is_flag else ' VALUE'} ({name} models): {option.help}")
    return "Options of a model's family:\n\n" + "\n\n".join(parts) if parts else ""
