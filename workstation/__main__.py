"""`python -m workstation`: the desktop app, or a CLI subcommand when one is given."""

from workstation.entry import main

raise SystemExit(main())
