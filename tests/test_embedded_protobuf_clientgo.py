"""client-go's typed clientset, every default as upstream ships it (protobuf bodies and answers), creates, gets,
lists, watches and deletes a ResourceSlice on the embedded API server (tests/clientgo, built from the Go module
proxy or cache; skipped only where no Go toolchain is installed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from embedded_api_objects import api_client_for
from kubernetes import client

from snn_dra.driver.embedded.apiserver import EmbeddedApiServer

pytest_plugins = ["embedded_fixtures"]

SOURCE = Path(__file__).resolve().parent / "clientgo"


@pytest.fixture(scope="module")
def clientgo_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("needs a Go toolchain (go on PATH) to build tests/clientgo")
    out = tmp_path_factory.mktemp("clientgo") / "clientgo"
    proc = subprocess.run([go, "build", "-o", str(out), "."], cwd=SOURCE, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.slow
def test_client_go_defaults_work_over_protobuf(clientgo_binary: Path, embedded_server: EmbeddedApiServer) -> None:
    proc = subprocess.run([str(clientgo_binary), str(embedded_server.kubeconfig_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["created"] == "clientgo-slice" and got["uid"] and got["creationSet"]
    assert (got["poolGeneration"], got["nodeName"], got["family"], got["cores"]) == (0, "node-a", "loihi2", "128")
    assert got["listed"] == ["clientgo-slice"]
    assert (got["watchEvent"], got["watchObject"]) == ("DELETED", True)
    assert 'resourceslices.resource.k8s.io "clientgo-slice" not found' in got["getAfterDelete"]
    # Protobuf both ways: the bodies client-go sent and every answer it read (watch frames included).
    assert sorted(got["sentMediaTypes"]) == ["DELETE application/vnd.kubernetes.protobuf",
                                             "POST application/vnd.kubernetes.protobuf"]
    assert sorted(got["answeredAs"]) == ["DELETE application/vnd.kubernetes.protobuf",
                                         "GET application/vnd.kubernetes.protobuf",
                                         "GET application/vnd.kubernetes.protobuf;stream=watch",
                                         "POST application/vnd.kubernetes.protobuf"]
    api = api_client_for(embedded_server)
    try:
        assert client.ResourceV1Api(api).list_resource_slice().items == []
    finally:
        api.close()
