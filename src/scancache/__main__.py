"""`python -m scancache`: the same as the `scancache` command."""

from scancache.cli.main import main

raise SystemExit(main())
