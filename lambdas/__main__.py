import sys

from lambdas.cli import main

sys.exit(main())
