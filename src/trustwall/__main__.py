import sys

from trustwall.cli.main import main

sys.exit(main())
