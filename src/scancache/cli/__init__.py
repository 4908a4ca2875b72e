"""The `scancache` command line; `scancache.cli.main.main` is its entry point."""
