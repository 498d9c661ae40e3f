"""Schemathesis over /api/openapi.json against the running devserver, as a signed-in caller:
no 5xx, every response (status, content type, body, headers) as the document says, auth really
enforced where the document declares it, invalid data refused. Bounded: a fixed number of cases
per operation and a fixed seed, so a run is repeatable and takes the same time each time.

It runs the schemathesis CLI in a subprocess: its pytest plugin does not work with pytest 9.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import httpx

from tests.e2e.conftest import DevServerProcess

CASES_PER_OPERATION = 30
SEED = 20261122
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "ignored_auth",
    ]
)


def test_api_conforms_to_its_document(devserver: DevServerProcess, tmp_path: Path) -> None:
    caller = devserver.login("fuzzer", "Fuzzer")
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [
            str(st),
            "run",
            f"{devserver.base_url}/api/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            str(CASES_PER_OPERATION),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--no-color",
            "--generation-database",
            "none",
            "--header",
            f"Authorization:{caller['Authorization']}",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    # Guard against a silent no-op: every operation was tested (schemathesis leaves out the
    # document's own URL), each by a report entry of its own.
    doc = httpx.get(f"{devserver.base_url}/api/openapi.json").json()
    documented = {
        f"{method.upper()} {path}"
        for path, ops in doc["paths"].items()
        for method in ops
        if path != "/api/openapi.json"
    }
    (report,) = tmp_path.glob("junit-*.xml")
    cases = ElementTree.parse(report).iter("testcase")  # noqa: S314 (our own report)
    # Schemathesis adds one "Stateful tests" entry once links between operations exist.
    tested = {case.get("name") for case in cases} - {"Stateful tests"}
    assert tested == documented
    assert len(documented) >= 8
