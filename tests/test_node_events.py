"""Node Events of the plugin reach a real (embedded) API server over HTTPS, shaped as kubectl shows them."""

from __future__ import annotations

from embedded_fixtures import embedded_api_client, embedded_server, embedded_server_factory  # noqa: F401
from kubernetes import client

from snn_dra.driver.events import MESSAGE_LIMIT, post_node_event, post_node_event_async


def test_a_node_event_is_stored_and_listed_for_the_node(embedded_api_client: client.ApiClient) -> None:  # noqa: F811
    stored = post_node_event(embedded_api_client, "node-a", reason="PrepareStateUntrusted", message="x" * 5000)
    assert stored is not None
    events = client.CoreV1Api(embedded_api_client).list_namespaced_event(
        "default", field_selector="involvedObject.name=node-a"
    )
    [event] = [e for e in events.items if e.reason == "PrepareStateUntrusted"]
    assert event.type == "Warning" and event.involved_object.kind == "Node"
    assert event.source.host == "node-a" and event.reporting_component == "snn-dra-kubelet-plugin"
    assert len(event.message) == MESSAGE_LIMIT and event.message.endswith("...")


def test_a_failed_post_is_logged_not_raised() -> None:
    cfg = client.Configuration()
    cfg.host = "https://127.0.0.1:1"  # nothing listens
    cfg.retries = 0
    api = client.ApiClient(cfg)
    try:
        assert post_node_event(api, "node-a", reason="R", message="m") is None
        thread = post_node_event_async(api, "node-a", reason="R", message="m")
        thread.join(30)
        assert not thread.is_alive()
    finally:
        api.close()
