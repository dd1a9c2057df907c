"""The plugin's metrics reach a Prometheus scrape with the names and labels operators alert on."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator

import pytest

from snn_dra.driver.telemetry import DriverMetrics, setup_metrics


@pytest.fixture
def metrics() -> Iterator[DriverMetrics]:
    m = setup_metrics(0, "127.0.0.1")
    yield m
    m.shutdown()


def scrape(m: DriverMetrics) -> str:
    assert m.server is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{m.server.server_port}/metrics", timeout=10) as resp:
        return resp.read().decode()


def sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels} in:\n{text}")


def test_requests_are_counted_by_result_and_timed(metrics: DriverMetrics) -> None:
    with metrics.request("NodePrepareResources", "v1"):
        pass
    with pytest.raises(RuntimeError), metrics.request("NodePrepareResources", "v1"):
        raise RuntimeError("boom")
    metrics.claims("NodePrepareResources", ok=3, failed=1)
    text = scrape(metrics)
    assert sample(text, "snn_dra_requests_total", method="NodePrepareResources", api="v1", result="ok") == 1
    assert sample(text, "snn_dra_requests_total", method="NodePrepareResources", api="v1", result="error") == 1
    assert sample(text, "snn_dra_claims_total", method="NodePrepareResources", result="ok") == 3
    assert sample(text, "snn_dra_claims_total", method="NodePrepareResources", result="error") == 1
    assert sample(text, "snn_dra_request_duration_seconds_count", method="NodePrepareResources") == 2
    assert sample(text, "snn_dra_requests_inflight", method="NodePrepareResources") == 0


def test_gauges_follow_the_plugin_state(metrics: DriverMetrics) -> None:
    metrics.gauges.prepared_devices = 7
    metrics.published(1234)
    text = scrape(metrics)
    assert sample(text, "snn_dra_prepared_devices") == 7
    assert sample(text, "snn_dra_published_devices") == 1234
    assert sample(text, "snn_dra_last_publish_timestamp_seconds") > 1.7e9


def test_no_claim_uid_label_ever(metrics: DriverMetrics) -> None:
    with metrics.request("NodeUnprepareResources", "v1beta1"):
        pass
    labels = set(re.findall(r'(\w+)="', scrape(metrics)))
    assert not labels & {"uid", "claim", "namespace", "name"}


def test_untrusted_prepare_state_is_counted(metrics: DriverMetrics) -> None:
    metrics.state_untrusted()
    metrics.state_untrusted()
    assert sample(scrape(metrics), "snn_dra_prepare_state_untrusted_total") == 2
