"""`python -m drill`: rehearse the DR plan's scenarios on this machine and report."""

from drill.cli import main

raise SystemExit(main())
