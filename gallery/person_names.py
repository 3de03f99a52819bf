"""People's names from photo folders: a ``name.txt`` display name, and labels that are still folder names.

A person's folder ``photos/ada_lovelace/`` names the person ``ada_lovelace``
unless it holds a ``name.txt`` whose first non-empty line is the display name
(``Ada Lovelace``). :func:`looks_like_folder_name` tells the command line
which enrolled names to suggest renaming.
"""
from __future__ import annotations

from pathlib import Path

#: In a person's folder: the display name (its first non-empty line) instead of the folder's name.
DISPLAY_NAME_FILE = "name.txt"


def folder_person_name(folder: Path) -> str:
    """The name of the person whose photos are in ``folder``: the first non-empty line of its
    ``name.txt`` when there is one, else the folder's name.

    Raises
    ------
    ValueError
        When ``name.txt`` cannot be read, is empty or is not UTF-8 text, or when its
        name could not be a person's name (control characters, ``/``, too long).
    """
    from gallery.store import check_new_name

    name_file = Path(folder) / DISPLAY_NAME_FILE
    if not name_file.is_file():
        return Path(folder).name
    try:
        lines = [line.strip() for line in name_file.read_text(encoding="utf-8-sig").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the display name in {name_file}: {exc}") from None
    name = next((line for line in lines if line), "")
    if not name:
        raise ValueError(f"{name_file} is empty: write the person's display name on its first line, "
                         f"or delete it to use the folder name {Path(folder).name!r}")
    return check_new_name(name, what=f"the display name in {name_file}")


def looks_like_folder_name(name: str) -> bool:
    """Whether ``name`` reads like a folder name rather than a display name: it has an underscore,
    or letters and no capital and no space (``lin_manuel_miranda``, ``madonna``; not ``Madonna``)."""
    if "_" in name:
        return True
    return " " not in name and name.lower() == name and name.upper() != name


def display_name_guess(name: str) -> str:
    """A display name to suggest for a folder-like ``name``: ``lin_manuel_miranda`` -> ``Lin Manuel Miranda``."""
    return " ".join(word.capitalize() for word in name.replace("_", " ").split()) or name
