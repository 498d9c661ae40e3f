"""What `import function_app` loads: the Functions host pays it on every new instance, so the
route modules import only what registering routes needs. Services (and their adapters) load when
the runtime builds them, on first use; a route module names a service's view types for
annotations only (under TYPE_CHECKING)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_app_loads_no_service_and_no_adapter() -> None:
    probe = (
        "import sys, function_app; print(' '.join(sorted(m for m in sys.modules if "
        "m.startswith(('switchboard.services.', 'switchboard.adapters.', 'azure.cosmos', "
        "'azure.communication', 'msgraph', 'aiohttp')))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    # The caller type is what every handler receives: the one service module routes need.
    assert loaded == ["switchboard.services.caller"]
