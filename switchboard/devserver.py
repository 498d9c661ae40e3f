"""`python -m switchboard.devserver`: the embedded HTTP host on the project's `function_app`.

The host itself is `switchboard/dev/devserver.py`, with the rest of the dev-only code; this module
is the one place that brings the host and the app together (it sits above both), and imported
under this name it is that module, so imports written for its old home keep working. Left out of
a publish with `switchboard/dev/` (.funcignore).
"""

import sys

import azure.functions as func

from switchboard.dev import devserver


def load_app() -> func.FunctionApp:
    """The project's app: every capability's blueprint, and the dev one in dev mode."""
    from function_app import app

    return app


if __name__ == "__main__":
    sys.exit(devserver.main(load_app))
else:
    sys.modules[__name__] = devserver
