"""``python -m runql.cli``: the ``runql`` command."""

from runql.cli.main import main

raise SystemExit(main())
