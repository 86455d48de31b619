"""``python -m cam_core``: the command-line interface."""

from cam_core.cli import main

raise SystemExit(main())
