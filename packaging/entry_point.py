"""Entry point of the frozen build: the desktop app by default, CLI subcommands as usual."""

import multiprocessing
import sys

from workstation.entry import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # harmless unless something ever spawns processes
    sys.exit(main())
