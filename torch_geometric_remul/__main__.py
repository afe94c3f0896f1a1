import sys

from torch_geometric_remul.cli import main

sys.exit(main())
