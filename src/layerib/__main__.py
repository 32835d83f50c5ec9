import sys

from layerib.cli import main

sys.exit(main())
