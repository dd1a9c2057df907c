"""The generated descriptors carry the kubelet's exact wire names and field numbers (kubelet-grpc.md §2 to §4).

gRPC routes by the full method path and protobuf decodes by field number, so a typo here would make the kubelet
and the plugin silently disagree.
"""

from __future__ import annotations

from types import ModuleType

import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor, FileDescriptor

from snn_dra.api.kubelet.dra.v1 import api_pb2 as dra_v1
from snn_dra.api.kubelet.dra.v1 import api_pb2_grpc as dra_v1_grpc
from snn_dra.api.kubelet.dra.v1beta1 import api_pb2 as dra_v1beta1
from snn_dra.api.kubelet.dra.v1beta1 import api_pb2_grpc as dra_v1beta1_grpc
from snn_dra.api.kubelet.dra_health.v1 import api_pb2 as health_v1
from snn_dra.api.kubelet.dra_health.v1 import api_pb2_grpc as health_v1_grpc
from snn_dra.api.kubelet.dra_health.v1alpha1 import api_pb2 as health_v1alpha1
from snn_dra.api.kubelet.dra_health.v1alpha1 import api_pb2_grpc as health_v1alpha1_grpc
from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2 as reg
from snn_dra.api.kubelet.pluginregistration.v1 import api_pb2_grpc as reg_grpc

REPEATED = "repeated"
OPTIONAL = "optional"
SINGLE = ""

STRING = FieldDescriptor.TYPE_STRING
BOOL = FieldDescriptor.TYPE_BOOL
INT64 = FieldDescriptor.TYPE_INT64
MESSAGE = FieldDescriptor.TYPE_MESSAGE
ENUM = FieldDescriptor.TYPE_ENUM


def _methods(module: ModuleType) -> set[str]:
    fd: FileDescriptor = module.DESCRIPTOR
    return {f"/{svc.full_name}/{m.name}" for svc in fd.services_by_name.values() for m in svc.methods}


@pytest.mark.parametrize(
    ("module", "package", "methods"),
    [
        (
            reg,
            "pluginregistration",
            {"/pluginregistration.Registration/GetInfo", "/pluginregistration.Registration/NotifyRegistrationStatus"},
        ),
        (
            dra_v1,
            "k8s.io.kubelet.pkg.apis.dra.v1",
            {
                "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources",
                "/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodeUnprepareResources",
            },
        ),
        (
            dra_v1beta1,
            "k8s.io.kubelet.pkg.apis.dra.v1beta1",
            {
                "/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/NodePrepareResources",
                "/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/NodeUnprepareResources",
            },
        ),
        (health_v1alpha1, "v1alpha1", {"/v1alpha1.DRAResourceHealth/NodeWatchResources"}),
        (health_v1, "v1", {"/v1.DRAResourceHealth/NodeWatchResources"}),
    ],
)
def test_packages_and_full_method_names(module: ModuleType, package: str, methods: set[str]) -> None:
    assert module.DESCRIPTOR.package == package
    assert _methods(module) == methods


@pytest.mark.parametrize(
    ("grpc_module", "paths"),
    [
        (reg_grpc, ["/pluginregistration.Registration/GetInfo"]),
        (dra_v1_grpc, ["/k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin/NodePrepareResources"]),
        (dra_v1beta1_grpc, ["/k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin/NodeUnprepareResources"]),
        (health_v1alpha1_grpc, ["/v1alpha1.DRAResourceHealth/NodeWatchResources"]),
        (health_v1_grpc, ["/v1.DRAResourceHealth/NodeWatchResources"]),
    ],
)
def test_generated_stubs_use_the_wire_paths(grpc_module: ModuleType, paths: list[str]) -> None:
    source = grpc_module.__loader__.get_source(grpc_module.__name__)  # type: ignore[union-attr]
    for path in paths:
        assert f"'{path}'" in source


def test_streaming_shape_of_health_watch() -> None:
    for module in (health_v1, health_v1alpha1):
        method = module.DESCRIPTOR.services_by_name["DRAResourceHealth"].methods_by_name["NodeWatchResources"]
        assert method.server_streaming and not method.client_streaming
        assert method.input_type.name == "NodeWatchResourcesRequest"
        assert method.output_type.name == "NodeWatchResourcesResponse"


def _fields(module: ModuleType, message: str) -> dict[str, tuple[int, int, str]]:
    desc = module.DESCRIPTOR.message_types_by_name[message]
    out = {}
    for f in desc.fields:
        label = REPEATED if f.is_repeated else (OPTIONAL if f.has_presence and f.type != MESSAGE else SINGLE)
        out[f.name] = (f.number, f.type, label)
    return out


def test_registration_messages() -> None:
    assert _fields(reg, "InfoRequest") == {}
    assert _fields(reg, "PluginInfo") == {
        "type": (1, STRING, SINGLE),
        "name": (2, STRING, SINGLE),
        "endpoint": (3, STRING, SINGLE),
        "supported_versions": (4, STRING, REPEATED),
    }
    assert _fields(reg, "RegistrationStatus") == {"plugin_registered": (1, BOOL, SINGLE), "error": (2, STRING, SINGLE)}
    assert _fields(reg, "RegistrationStatusResponse") == {}


@pytest.mark.parametrize("module", [dra_v1, dra_v1beta1])
def test_dra_messages(module: ModuleType) -> None:
    assert _fields(module, "NodePrepareResourcesRequest") == {"claims": (1, MESSAGE, REPEATED)}
    assert _fields(module, "NodeUnprepareResourcesRequest") == {"claims": (1, MESSAGE, REPEATED)}
    assert _fields(module, "NodePrepareResourceResponse") == {
        "devices": (1, MESSAGE, REPEATED),
        "error": (2, STRING, SINGLE),
    }
    assert _fields(module, "NodeUnprepareResourceResponse") == {"error": (1, STRING, SINGLE)}
    assert _fields(module, "Claim") == {
        "namespace": (1, STRING, SINGLE),
        "uid": (2, STRING, SINGLE),
        "name": (3, STRING, SINGLE),
    }
    for response, value in (
        ("NodePrepareResourcesResponse", "NodePrepareResourceResponse"),
        ("NodeUnprepareResourcesResponse", "NodeUnprepareResourceResponse"),
    ):
        field = module.DESCRIPTOR.message_types_by_name[response].fields_by_name["claims"]
        assert field.number == 1
        assert field.message_type.GetOptions().map_entry
        key, val = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        assert key.type == STRING
        assert val.message_type.name == value


def test_device_share_id_only_in_v1() -> None:
    common = {
        "request_names": (1, STRING, REPEATED),
        "pool_name": (2, STRING, SINGLE),
        "device_name": (3, STRING, SINGLE),
        "cdi_device_ids": (4, STRING, REPEATED),
    }
    assert _fields(dra_v1, "Device") == {**common, "share_id": (5, STRING, OPTIONAL)}
    assert _fields(dra_v1beta1, "Device") == common


@pytest.mark.parametrize("module", [health_v1alpha1, health_v1])
def test_health_messages(module: ModuleType) -> None:
    assert _fields(module, "NodeWatchResourcesRequest") == {}
    assert _fields(module, "DeviceIdentifier") == {"pool_name": (1, STRING, SINGLE), "device_name": (2, STRING, SINGLE)}
    assert _fields(module, "DeviceHealth") == {
        "device": (1, MESSAGE, SINGLE),
        "health": (2, ENUM, SINGLE),
        "last_updated_time": (3, INT64, SINGLE),
        "health_check_timeout_seconds": (4, INT64, SINGLE),
        "message": (5, STRING, SINGLE),
    }
    assert _fields(module, "NodeWatchResourcesResponse") == {"devices": (1, MESSAGE, REPEATED)}
    enum = module.DESCRIPTOR.enum_types_by_name["HealthStatus"]
    assert {v.name: v.number for v in enum.values} == {"UNKNOWN": 0, "HEALTHY": 1, "UNHEALTHY": 2}


def test_all_five_files_coexist_in_the_default_pool() -> None:
    pool = descriptor_pool.Default()
    names = [m.DESCRIPTOR.name for m in (reg, dra_v1, dra_v1beta1, health_v1alpha1, health_v1)]
    assert len(set(names)) == 5
    for name in names:
        assert name.startswith("snn_dra/api/kubelet/")
        assert pool.FindFileByName(name) is not None
    assert pool.FindServiceByName("v1.DRAResourceHealth").full_name == "v1.DRAResourceHealth"
    assert pool.FindServiceByName("k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin") is not None


def test_wire_compatible_round_trip_between_v1_and_v1beta1() -> None:
    """A v1beta1 peer decodes a v1 Device and drops share_id as an unknown field."""
    dev = dra_v1.Device(request_names=["r"], pool_name="p", device_name="d", cdi_device_ids=["snn.dra.dev/x=y"])
    dev.share_id = "s"
    back = dra_v1beta1.Device.FromString(dev.SerializeToString())
    assert (list(back.request_names), back.pool_name, back.device_name, list(back.cdi_device_ids)) == (
        ["r"],
        "p",
        "d",
        ["snn.dra.dev/x=y"],
    )
