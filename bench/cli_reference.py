"""Print docs/cli.md from the commands' own --help texts: python bench/cli_reference.py"""

from __future__ import annotations

import os
import subprocess
import sys

COMMANDS = [[], ["scan"], ["group"], ["people"], ["people", "name"], ["people", "merge"],
            ["people", "split"], ["people", "move-face"], ["people", "remove-face"],
            ["people", "show"], ["people", "suggest"], ["people", "undo"], ["people", "history"],
            ["people", "export-xmp"], ["people", "regions"], ["verify"],
            ["find"], ["eval"], ["train"], ["models"]]
# A fixed width and no user settings; PYTHONPATH passes through, so that a checkout's
# sources (PYTHONPATH=src) are the ones documented.
ENV = {"COLUMNS": "100", "PATH": "/usr/bin:/bin"} | (
    {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
)


# A fixed width and nothing from the caller's environment but PYTHONPATH (so that
# `PYTHONPATH=src python bench/cli_reference.py` documents those sources): FACECLUSTER_*
# variables would change the defaults shown.
ENV = {"COLUMNS": "100", "PATH": "/usr/bin:/bin"} | (
    {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
)


def main() -> None:
    print("# CLI reference\n")
    print("Generated from the commands' `--help` by `python bench/cli_reference.py > docs/cli.md`.")
    print("Every distance and threshold is a squared L2 distance between unit-length embeddings.\n")
    for cmd in COMMANDS:
        out = subprocess.run([sys.executable, "-m", "facecluster", *cmd, "--help"],
                             capture_output=True, text=True, check=True,
                             env=ENV).stdout
        print(f"## facecluster {' '.join(cmd)}".rstrip() + "\n")
        print("```text\n" + out.rstrip() + "\n```\n")


if __name__ == "__main__":
    main()
