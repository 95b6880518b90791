"""Command line, one module per subcommand group; :mod:`grokspec.cli.main` dispatches."""
