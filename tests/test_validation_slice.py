"""ResourceSlice semantic validation: each upstream rule rejects a broken slice with the apiserver's field path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from snn_dra.driver.validation import validate_object
from snn_dra.driver.validation.errors import CauseType, FieldError
from snn_dra.driver.validation.resourceslice import lint_slice, validate_pool, validate_resource_slice


def device(name: str = "d0", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "attributes": {"type": {"string": "chip"}, "coreCount": {"int": 4}, "version": {"version": "1.2.3"}},
        "capacity": {"cores": {"value": "4"}},
        **extra,
    }


def good(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "driver": "snn.dra.dev",
        "nodeName": "node-a",
        "pool": {"name": "node-a", "generation": 1, "resourceSliceCount": 1},
        "devices": [device()],
    }
    body.update(spec)
    return {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceSlice",
        "metadata": {"generateName": "00000-snn.dra.dev-node-a-"},
        "spec": body,
    }


def errors(obj: dict[str, Any], profile: str = "1.37", old: dict[str, Any] | None = None) -> list[FieldError]:
    return validate_resource_slice(obj, old, profile)


def fields(obj: dict[str, Any], profile: str = "1.37") -> set[str]:
    return {e.field for e in errors(obj, profile)}


@pytest.mark.parametrize("profile", ["1.34", "1.35", "1.36", "1.37"])
def test_good_slice_is_valid(profile: str) -> None:
    assert errors(good(), profile) == []


def test_unknown_profile_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"1\.34"):
        validate_resource_slice(good(), None, "1.99")


def test_bad_attribute_id_carries_the_apiserver_path() -> None:
    s = good()
    s["spec"]["devices"].insert(0, device("a"))
    s["spec"]["devices"].insert(0, device("b"))
    s["spec"]["devices"].insert(0, device("c"))
    s["spec"]["devices"][3]["attributes"]["bad-id"] = {"int": 1}
    errs = errors(s)
    assert [e.field for e in errs] == ["spec.devices[3].attributes[bad-id]"]
    assert "C identifier" in errs[0].message


def test_attribute_name_rules() -> None:
    s = good()
    attrs = s["spec"]["devices"][0]["attributes"]
    attrs["a" * 33] = {"int": 1}
    attrs["Bad_Domain!/x"] = {"int": 1}
    attrs["a/b/c"] = {"int": 1}
    got = fields(s)
    assert f"spec.devices[0].attributes[{'a' * 33}]" in got
    assert "spec.devices[0].attributes[Bad_Domain!/x]" in got
    assert "spec.devices[0].attributes[a/b/c]" in got


def test_attribute_value_exactly_one_type_and_lengths() -> None:
    s = good()
    attrs = s["spec"]["devices"][0]["attributes"]
    attrs["two"] = {"int": 1, "string": "x"}
    attrs["none"] = {}
    attrs["long"] = {"string": "x" * 65}
    attrs["ver"] = {"version": "01.2.3"}
    got = fields(s)
    assert {
        "spec.devices[0].attributes[two]",
        "spec.devices[0].attributes[none]",
        "spec.devices[0].attributes[long].string",
        "spec.devices[0].attributes[ver].version",
    } <= got


def test_qualified_collision_with_driver_domain_is_a_lint_not_an_api_error() -> None:
    s = good()
    s["spec"]["devices"][0]["attributes"]["snn.dra.dev/coreCount"] = {"int": 4}
    assert errors(s) == []  # upstream API validation accepts it
    lint = lint_slice(s)
    assert [(e.field, e.type) for e in lint] == [
        ("spec.devices[0].attributes[snn.dra.dev/coreCount]", CauseType.DUPLICATE)
    ]


def test_more_than_32_attributes_and_capacities() -> None:
    s = good()
    for i in range(31):
        s["spec"]["devices"][0]["attributes"][f"a{i}"] = {"int": i}
    errs = errors(s)
    assert any(e.field == "spec.devices[0]" and e.type == CauseType.TOO_MANY and "32" in e.message for e in errs)


def test_list_attributes_need_1_36_and_count_values() -> None:
    s = good()
    s["spec"]["devices"][0]["attributes"]["many"] = {"ints": list(range(50))}
    assert any("1.36" in e.message for e in errors(s, "1.35"))
    assert any("DRAListTypeAttributes" in e.message for e in errors(s, "1.36"))
    errs = validate_object(s, None, "1.36", gates={"DRAListTypeAttributes": True})
    assert any(e.field == "spec.devices[0].attributes" and "48" in e.message for e in errs)


def test_device_name_rules() -> None:
    s = good()
    s["spec"]["devices"].append(device("Bad_Name"))
    s["spec"]["devices"].append(device("d0"))
    s["spec"]["devices"].append(device("x" * 64))
    errs = errors(s)
    assert {(e.field, e.type) for e in errs} >= {
        ("spec.devices[1].name", CauseType.INVALID),
        ("spec.devices[2].name", CauseType.DUPLICATE),
        ("spec.devices[3].name", CauseType.INVALID),
    }


def test_exactly_one_node_selection() -> None:
    none = good()
    del none["spec"]["nodeName"]
    assert [(e.field, e.type) for e in errors(none)] == [("spec", CauseType.REQUIRED)]
    both = good(allNodes=True)
    assert "multiple fields are set" in errors(both)[0].message
    empty = good(nodeName="")
    assert "spec.nodeName" in fields(empty)
    false_all = good(allNodes=False)
    del false_all["spec"]["nodeName"]
    assert "spec.allNodes" in fields(false_all)
    selector = good(nodeSelector={"nodeSelectorTerms": [{}, {}]})
    del selector["spec"]["nodeName"]
    assert "spec.nodeSelector.nodeSelectorTerms" in fields(selector)


def test_per_device_node_selection() -> None:
    s = good(perDeviceNodeSelection=True)
    del s["spec"]["nodeName"]
    assert "spec.devices[0]" in fields(s)
    s["spec"]["devices"][0]["nodeName"] = "node-a"
    assert errors(s) == []
    plain = good()
    plain["spec"]["devices"][0]["allNodes"] = True
    assert "spec.devices[0].allNodes" in fields(plain)


def test_pool_rules() -> None:
    s = good(pool={"name": "Bad Pool", "generation": -1, "resourceSliceCount": 0})
    assert {"spec.pool.name", "spec.pool.generation", "spec.pool.resourceSliceCount"} <= fields(s)
    missing = good(driver="")
    assert "spec.driver" in fields(missing)


def test_devices_xor_shared_counters_from_1_35() -> None:
    s = good(sharedCounters=[{"name": "cs", "counters": {"c": {"value": "1"}}}])
    assert errors(s, "1.34") == []
    assert any("not both" in e.message for e in errors(s, "1.35"))


def test_device_limit_128_and_64_with_counters_or_taints() -> None:
    many = good(devices=[device(f"d{i}") for i in range(129)])
    assert any(e.field == "spec.devices" and "128" in e.message for e in errors(many))
    tainted = good(devices=[device(f"d{i}") for i in range(65)])
    tainted["spec"]["devices"][0]["taints"] = [{"key": "snn.dra.dev/unhealthy", "effect": "NoSchedule"}]
    assert any(e.field == "spec.devices" and "64" in e.message for e in errors(tainted))
    assert errors(tainted, "1.34") == []  # 1.34 has no 64-device rule


def test_counter_set_limits() -> None:
    sets = [{"name": f"cs{i}", "counters": {f"c{j}": {"value": "1"} for j in range(4)}} for i in range(9)]
    s = good(sharedCounters=sets)
    del s["spec"]["devices"]
    assert any(e.field == "spec.sharedCounters" and "8" in e.message for e in errors(s))
    assert any(e.field == "spec.sharedCounters" and "32" in e.message for e in errors(s, "1.34"))
    big = good(sharedCounters=[{"name": "cs", "counters": {f"c{j}": {"value": "1"} for j in range(33)}}])
    del big["spec"]["devices"]
    assert "spec.sharedCounters[0].counters" in fields(big)
    bad = good(
        sharedCounters=[{"name": "cs", "counters": {"Bad_Counter": {"value": "x"}}}, {"name": "cs", "counters": {}}]
    )
    del bad["spec"]["devices"]
    got = fields(bad)
    assert {
        "spec.sharedCounters[0].counters[Bad_Counter]",
        "spec.sharedCounters[0].counters[Bad_Counter].value",
        "spec.sharedCounters[1].name",
        "spec.sharedCounters[1].counters",
    } <= got


def test_consumption_limits() -> None:
    s = good()
    s["spec"]["devices"][0]["consumesCounters"] = [
        {"counterSet": f"cs{i}", "counters": {"c": {"value": "1"}}} for i in range(3)
    ]
    assert any(e.field == "spec.devices[0].consumesCounters" and "2" in e.message for e in errors(s))
    wide = good()
    wide["spec"]["devices"][0]["consumesCounters"] = [
        {"counterSet": "cs", "counters": {f"c{j}": {"value": "1"} for j in range(33)}}
    ]
    assert "spec.devices[0].consumesCounters[0].counters" in fields(wide)


def test_1_34_counter_references_stay_in_the_slice() -> None:
    s = good(sharedCounters=[{"name": "cs", "counters": {"c": {"value": "2"}}}])
    s["spec"]["devices"][0]["consumesCounters"] = [{"counterSet": "cs", "counters": {"c": {"value": "1"}}}]
    assert errors(s, "1.34") == []
    s["spec"]["devices"][0]["consumesCounters"] = [{"counterSet": "other", "counters": {"c": {"value": "1"}}}]
    assert "spec.devices[0].consumesCounters[0].counterSet" in fields(s, "1.34")
    s["spec"]["devices"][0]["consumesCounters"] = [{"counterSet": "cs", "counters": {"nope": {"value": "1"}}}]
    assert "spec.devices[0].consumesCounters[0].counters" in fields(s, "1.34")


def test_1_34_counters_per_slice_limit() -> None:
    s = good(
        devices=[
            device(
                f"d{i}",
                consumesCounters=[{"counterSet": "cs", "counters": {f"c{j}": {"value": "1"} for j in range(17)}}],
            )
            for i in range(61)
        ],
        sharedCounters=[{"name": "cs", "counters": {f"c{j}": {"value": "100"} for j in range(17)}}],
    )
    assert any(e.field == "spec.devices" and "1024" in e.message for e in errors(s, "1.34"))


def shared(**policy: Any) -> dict[str, Any]:
    s = good()
    s["spec"]["devices"][0]["allowMultipleAllocations"] = True
    s["spec"]["devices"][0]["capacity"]["eventThroughputMEPS"] = {"value": "512", "requestPolicy": policy}
    return s


def test_request_policy_rules() -> None:
    assert errors(shared(default="32", validRange={"min": "1", "max": "512", "step": "1"})) == []
    assert errors(shared(default="4", validValues=["1", "4", "8"])) == []
    base = "spec.devices[0].capacity[eventThroughputMEPS].requestPolicy"
    plain = good()
    plain["spec"]["devices"][0]["capacity"]["x"] = {"value": "1", "requestPolicy": {"default": "1"}}
    assert "spec.devices[0].capacity[x].requestPolicy" in fields(plain)
    # A default outside the range: reported at validRange.default from 1.37 on, at min/max before.
    assert f"{base}.validRange.default" in fields(shared(default="0", validRange={"min": "1"}))
    assert f"{base}.validRange.min" in fields(shared(default="0", validRange={"min": "1"}), "1.36")
    assert f"{base}.validRange.default" in fields(shared(default="9", validRange={"min": "1", "max": "8"}))
    assert f"{base}.validRange.max" in fields(shared(default="9", validRange={"min": "1", "max": "8"}), "1.36")
    assert f"{base}.validRange.max" in fields(shared(default="1", validRange={"min": "1", "max": "1024"}))
    assert f"{base}.validRange.max" in fields(shared(default="8", validRange={"min": "8", "max": "4"}))
    assert f"{base}.validRange.step" in fields(shared(default="4", validRange={"min": "1", "step": "2"}))
    assert f"{base}.validRange.step" in fields(shared(default="1", validRange={"min": "1", "step": "0"}))
    assert f"{base}.validValues[1]" in fields(shared(default="4", validValues=["4", "1"]))
    assert f"{base}.validValues" in fields(shared(default="2", validValues=["1", "4"]))
    assert f"{base}.validValues" in fields(shared(default="1", validValues=[str(i) for i in range(1, 12)]))
    assert base in fields(shared(default="1", validValues=["1"], validRange={"min": "1"}))
    # Without validValues or validRange upstream checks only that the default parses, not that it fits.
    assert errors(shared(default="1k")) == []
    assert f"{base}.default" in fields(shared(default="lots"))


def test_capacity_needs_a_valid_quantity() -> None:
    s = good()
    s["spec"]["devices"][0]["capacity"]["cores"] = {"value": "four"}
    s["spec"]["devices"][0]["capacity"]["neurons"] = {}
    assert {"spec.devices[0].capacity[cores].value", "spec.devices[0].capacity[neurons].value"} <= fields(s)


def test_taint_rules_per_profile() -> None:
    s = good()
    s["spec"]["devices"][0]["taints"] = [{"key": f"snn.dra.dev/t{i}", "effect": "NoSchedule"} for i in range(5)]
    assert "spec.devices[0].taints" in fields(s, "1.34")
    assert errors(s, "1.37") == []
    s["spec"]["devices"][0]["taints"] = [{"key": "snn.dra.dev/t", "effect": "None"}]
    assert "spec.devices[0].taints[0].effect" in fields(s, "1.35")
    assert errors(s, "1.36") == []
    s["spec"]["devices"][0]["taints"] = [{"key": "bad key", "value": "bad value!"}]
    assert {
        "spec.devices[0].taints[0].key",
        "spec.devices[0].taints[0].value",
        "spec.devices[0].taints[0].effect",
    } <= fields(s)
    s["spec"]["devices"][0]["taints"] = [{"key": "k", "effect": "NoSchedule"} for _ in range(17)]
    assert "spec.devices[0].taints" in fields(s)


def test_binding_conditions() -> None:
    s = good()
    s["spec"]["devices"][0]["bindingConditions"] = ["ready"]
    assert "spec.devices[0].bindingFailureConditions" in fields(s)
    s["spec"]["devices"][0]["bindingFailureConditions"] = ["ready"]
    assert "spec.devices[0].bindingFailureConditions" in fields(s)
    s["spec"]["devices"][0]["bindingFailureConditions"] = ["failed"]
    assert errors(s) == []
    s["spec"]["devices"][0]["bindingConditions"] = [f"c{i}" for i in range(5)]
    assert "spec.devices[0].bindingConditions" in fields(s)


def test_1_37_only_fields() -> None:
    s = good(partitionTypeAttribute="snn.dra.dev/type", skipNodeOperations=["*"])
    s["spec"]["devices"][0]["consumesCounters"] = [{"counterSet": "chip", "counters": {"cores": {"value": "4"}}}]
    assert errors(s, "1.37") == []
    assert {"spec.partitionTypeAttribute", "spec.skipNodeOperations"} <= fields(s, "1.36")
    s["spec"]["skipNodeOperations"] = ["NodePrepareResources"]
    assert "spec.skipNodeOperations" in fields(s)
    s["spec"]["partitionTypeAttribute"] = "type"
    assert "spec.partitionTypeAttribute" in fields(s)


def test_metadata_rules() -> None:
    s = good()
    s["metadata"] = {}
    assert "metadata.name" in fields(s)
    s["metadata"] = {"name": "Bad_Name"}
    assert "metadata.name" in fields(s)


def test_immutable_fields_on_update() -> None:
    old = good()
    old["metadata"] = {"name": "00000-snn.dra.dev-node-a-abcde"}
    new = copy.deepcopy(old)
    assert errors(new, old=old) == []
    new["spec"]["driver"] = "other.dev"
    new["spec"]["pool"]["name"] = "other"
    new["spec"]["nodeName"] = "node-b"
    new["metadata"]["name"] = "renamed"
    got = {e.field for e in errors(new, old=old)}
    assert {"spec.driver", "spec.pool.name", "spec.nodeName", "metadata.name"} <= got
    changed = copy.deepcopy(old)
    changed["spec"]["devices"].append(device("d1"))
    changed["spec"]["pool"]["generation"] = 2
    assert errors(changed, old=old) == []


# ---- pool-level rules ----------------------------------------------------------------------------


def pool(*specs: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, extra in enumerate(specs):
        s = good(pool={"name": "node-a", "generation": 1, "resourceSliceCount": len(specs)})
        s["metadata"]["generateName"] = f"{i:05x}-snn.dra.dev-node-a-"
        del s["spec"]["devices"]
        s["spec"].update(extra)
        out.append(s)
    return out


def test_pool_resolves_counter_references_across_slices() -> None:
    counters = {"sharedCounters": [{"name": "cs", "counters": {"tile-0": {"value": "4"}}}]}
    ok = {"devices": [device(consumesCounters=[{"counterSet": "cs", "counters": {"tile-0": {"value": "4"}}}])]}
    assert validate_pool(pool(counters, ok)) == []
    bad_set = {"devices": [device(consumesCounters=[{"counterSet": "nope", "counters": {"x": {"value": "1"}}}])]}
    bad_counter = {
        "devices": [device("d1", consumesCounters=[{"counterSet": "cs", "counters": {"x": {"value": "1"}}}])]
    }
    errs = validate_pool(pool(counters, bad_set, bad_counter))
    assert {(e.field, e.type) for e in errs} == {
        ("items[1].spec.devices[0].consumesCounters[0].counterSet", CauseType.NOT_FOUND),
        ("items[2].spec.devices[0].consumesCounters[0].counters[x]", CauseType.NOT_FOUND),
    }


def test_pool_duplicates_and_counts() -> None:
    counters = {"sharedCounters": [{"name": "cs", "counters": {"c": {"value": "1"}}}]}
    errs = validate_pool(pool(counters, counters, {"devices": [device()]}, {"devices": [device()]}))
    assert {e.field for e in errs} == {"items[1].spec.sharedCounters[0].name", "items[3].spec.devices[0].name"}
    short = pool({"devices": [device()]}, {"devices": [device("d1")]})
    short[1]["spec"]["pool"]["resourceSliceCount"] = 3
    assert [e.field for e in validate_pool(short)] == ["items[1].spec.pool.resourceSliceCount"]


def test_pool_ignores_older_generations() -> None:
    slices = pool({"devices": [device()]}, {"devices": [device()]})
    slices[0]["spec"]["pool"]["generation"] = 2
    slices[0]["spec"]["pool"]["resourceSliceCount"] = 1
    assert validate_pool(slices) == []
