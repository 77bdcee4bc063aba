"""`python -m civic311.cli` runs the `civic311` command."""

from civic311.cli import main

raise SystemExit(main())
