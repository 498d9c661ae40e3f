"""`python -m switchboard.devserver`: the command's old home, kept as an alias.

The embedded HTTP host lives in `switchboard/dev/devserver.py` with the rest of the dev-only
code; this module is that module under its old name, so the command and imports written for it
keep working. Left out of a publish with `switchboard/dev/` (.funcignore).
"""

import sys

from switchboard.dev import devserver

if __name__ == "__main__":
    sys.exit(devserver.main())
else:
    sys.modules[__name__] = devserver
