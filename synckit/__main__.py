"""``python -m synckit`` runs the command line."""

from synckit.cli import main

raise SystemExit(main())
