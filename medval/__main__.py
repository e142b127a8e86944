"""``python -m medval``."""

from medval.cli import main

raise SystemExit(main())
