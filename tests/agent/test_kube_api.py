"""List and watch through the real kubernetes client against the in-process API server:
resourceVersions, pagination, bookmarks, 410 Gone, dropped connections, kinds not served."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fake_apiserver import GROUPED, FakeApiServer
from kube_objects import FAST, namespace, netpol, pod, wait_until

from netfence.sources.kube_api import CALICO_API, CALICO_CRD, KubeSource, Resource, WatchSettings, plural, resources
from netfence.sources.load import build_inventory
from netfence.sources.registry import REGISTRY


class Recorder:
    def __init__(self) -> None:
        self.reconnects: Counter[tuple[str, str]] = Counter()
        self.changes = threading.Event()

    def reconnected(self, resource: Resource, reason: str) -> None:
        self.reconnects[(resource.kind, reason)] += 1


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def source(configuration: Any, recorder: Recorder) -> Iterator[KubeSource]:
    made: list[KubeSource] = []

    def make(settings: WatchSettings = FAST, calico: str = "crd") -> KubeSource:
        found = KubeSource(configuration, resources(calico), settings, recorder.reconnected)
        found.start(recorder.changes.set)
        made.append(found)
        return found

    yield make  # type: ignore[misc]
    for item in made:
        item.stop()


def names(source: KubeSource, kind: str = "Pod") -> list[str]:
    return sorted(d.label for d in source.snapshot().documents if d.kind == kind)


def requests(apiserver: FakeApiServer, path: str, watch: bool) -> list[dict[str, str]]:
    return [q for _, p, q in apiserver.requests if p == path and (q.get("watch") == "true") == watch]


def test_every_kind_is_listed_then_watched_from_the_list_resource_version(apiserver: FakeApiServer, source: Any) -> None:
    apiserver.create(namespace("dev"))
    apiserver.create(pod("dev/a", "10.0.0.1"))
    kube = source()
    assert kube.wait_synced(10)
    assert names(kube) == ["Pod dev/a"] and names(kube, "Namespace") == ["Namespace dev"]
    apiserver.wait_for_watches(len(kube.informers))
    listed = requests(apiserver, "/api/v1/pods", watch=False)
    watched = requests(apiserver, "/api/v1/pods", watch=True)
    assert listed[0]["limit"] == "500"
    assert watched[0]["resourceVersion"] == str(apiserver.resource_version)
    assert watched[0]["allowWatchBookmarks"] == "true" and "timeoutSeconds" in watched[0]
    # Calico from the CRDs only; every other registry kind watched once.
    watched_paths = {p for _, p, q in apiserver.requests if q.get("watch") == "true"}
    assert "/apis/crd.projectcalico.org/v1/networkpolicies" in watched_paths
    assert not any(p.startswith("/apis/projectcalico.org/") for p in watched_paths)


def test_a_large_list_comes_in_pages_joined_by_continue(apiserver: FakeApiServer, source: Any) -> None:
    for i in range(7):
        apiserver.create(pod(f"dev/p{i}", f"10.0.0.{i + 1}"))
    kube = source(WatchSettings(**{**vars(FAST), "page": 3}))
    assert kube.wait_synced(10)
    assert len(names(kube)) == 7
    pages = requests(apiserver, "/api/v1/pods", watch=False)
    assert [q.get("continue") for q in pages] == [None, "3", "6"]


def test_watch_events_add_change_and_remove_cache_objects(apiserver: FakeApiServer, source: Any, recorder: Recorder) -> None:
    kube = source()
    assert kube.wait_synced(10)
    apiserver.wait_for_watches(len(kube.informers))
    recorder.changes.clear()
    apiserver.create(pod("dev/a", "10.0.0.1", app="web"))
    wait_until(lambda: names(kube) == ["Pod dev/a"], what="ADDED")
    assert recorder.changes.is_set()
    changed = pod("dev/a", "10.0.0.1", app="db")
    apiserver.update(changed)
    wait_until(lambda: next(d for d in kube.snapshot().documents if d.kind == "Pod").body["metadata"]["labels"] == {"app": "db"}, what="MODIFIED")
    apiserver.delete("v1", "Pod", "a", "dev")
    wait_until(lambda: names(kube) == [], what="DELETED")
    # Fields netfence never reads are not kept.
    apiserver.create(pod("dev/b", "10.0.0.2"))
    wait_until(lambda: names(kube) == ["Pod dev/b"], what="ADDED")
    assert all("managedFields" not in d.body["metadata"] for d in kube.snapshot().documents)


def test_a_bookmark_moves_the_resource_version_a_new_watch_starts_from(apiserver: FakeApiServer, source: Any) -> None:
    kube = source()
    assert kube.wait_synced(10)
    apiserver.wait_for_watches(len(kube.informers))
    apiserver.create(namespace("other"))  # moves the version; the pod watch sees no event of it
    apiserver.bookmark()
    informer = next(i for i in kube.informers if i.resource.kind == "Pod")
    wait_until(lambda: informer.resource_version == str(apiserver.resource_version), what="the bookmark")
    lists = len(requests(apiserver, "/api/v1/pods", watch=False))
    apiserver.drop_watches()
    wait_until(lambda: len(requests(apiserver, "/api/v1/pods", watch=True)) == 2, what="the watch again")
    assert requests(apiserver, "/api/v1/pods", watch=True)[-1]["resourceVersion"] == str(apiserver.resource_version)
    assert len(requests(apiserver, "/api/v1/pods", watch=False)) == lists


def test_a_dropped_connection_resumes_the_watch_without_listing_again(
    apiserver: FakeApiServer, source: Any, recorder: Recorder
) -> None:
    kube = source()
    assert kube.wait_synced(10)
    apiserver.wait_for_watches(len(kube.informers))
    apiserver.create(pod("dev/a", "10.0.0.1"))
    wait_until(lambda: names(kube) == ["Pod dev/a"], what="pod a")
    seen = str(apiserver.resource_version)
    apiserver.drop_watches()
    apiserver.create(pod("dev/b", "10.0.0.2"))  # while the watch is down
    wait_until(lambda: names(kube) == ["Pod dev/a", "Pod dev/b"], what="the event missed while disconnected")
    watches = requests(apiserver, "/api/v1/pods", watch=True)
    assert watches[-1]["resourceVersion"] == seen
    assert len(requests(apiserver, "/api/v1/pods", watch=False)) == 1
    assert recorder.reconnects[("Pod", "error")] >= 1


@pytest.mark.parametrize("as_http", [False, True], ids=["error-event", "http-status"])
def test_410_gone_lists_again_and_forgets_what_was_deleted_meanwhile(
    apiserver: FakeApiServer, source: Any, recorder: Recorder, as_http: bool
) -> None:
    apiserver.gone_as_http = as_http
    apiserver.create(pod("dev/a", "10.0.0.1"))
    apiserver.create(pod("dev/b", "10.0.0.2"))
    kube = source()
    assert kube.wait_synced(10)
    apiserver.wait_for_watches(len(kube.informers))
    apiserver.drop_watches()
    # While disconnected: b deleted and the history compacted, so the old version is gone.
    apiserver.delete("v1", "Pod", "b", "dev")
    apiserver.create(pod("dev/c", "10.0.0.3"))
    apiserver.compact()
    wait_until(lambda: names(kube) == ["Pod dev/a", "Pod dev/c"], what="the relist")
    assert recorder.reconnects[("Pod", "gone")] >= 1
    assert len(requests(apiserver, "/api/v1/pods", watch=False)) >= 2


def test_a_kind_the_server_does_not_serve_is_empty_and_looked_for_again(configuration: Any, recorder: Recorder) -> None:
    server = FakeApiServer(absent={"policy.networking.k8s.io/v1alpha1", "policy.networking.k8s.io/v1alpha2"})
    configuration.host = server.start()
    kube = KubeSource(configuration, resources("none"), FAST, recorder.reconnected)
    try:
        kube.start(lambda: None)
        assert kube.wait_synced(10)
        assert recorder.reconnects[("AdminNetworkPolicy", "absent")] >= 1
        wait_until(lambda: recorder.reconnects[("AdminNetworkPolicy", "absent")] >= 2, what="a second look")
    finally:
        kube.stop()
        server.stop()


def test_server_errors_are_retried_with_backoff_until_the_list_succeeds(
    apiserver: FakeApiServer, source: Any, recorder: Recorder
) -> None:
    apiserver.create(pod("dev/a", "10.0.0.1"))
    apiserver.fail_next(500, 40)
    kube = source()
    assert kube.wait_synced(15)
    assert names(kube) == ["Pod dev/a"]
    assert sum(n for (kind, reason), n in recorder.reconnects.items() if reason == "error") >= 1


def test_losing_the_api_server_keeps_the_cache(apiserver: FakeApiServer, source: Any) -> None:
    apiserver.create(pod("dev/a", "10.0.0.1"))
    kube = source()
    assert kube.wait_synced(10)
    apiserver.stop()
    wait_until(lambda: kube.problems(), what="the source noticing")
    assert names(kube) == ["Pod dev/a"]


def test_every_registry_kind_is_watched_with_the_resource_name_the_api_server_uses() -> None:
    served = {(version, kind): name for version, kinds in GROUPED.items() for kind, (name, _) in kinds.items()}
    served.update({("v1", k): n for k, n in (("Namespace", "namespaces"), ("Pod", "pods"), ("Service", "services"),
                                            ("ServiceAccount", "serviceaccounts"), ("Node", "nodes"))})  # fmt: skip
    for calico, other in (("crd", CALICO_API), ("v3", CALICO_CRD)):
        kinds = resources(calico)
        assert {(r.api_version, r.kind) for r in kinds} == {key for key in REGISTRY if key[0] != other}
        for r in kinds:
            assert served[(r.api_version, r.kind)] == r.plural
            assert r.namespaced == REGISTRY[(r.api_version, r.kind)].namespaced
    assert plural("NetworkPolicy") == "networkpolicies" and plural("Tier") == "tiers"


def test_snapshot_documents_load_through_the_same_converters_and_checks(apiserver: FakeApiServer, source: Any) -> None:
    apiserver.create(namespace("dev"))
    apiserver.create(pod("dev/web", "10.0.0.1", app="web"))
    apiserver.create(netpol("dev/allow", {"app": "web"}, {"app": "client"}))
    kube = source()
    assert kube.wait_synced(10)
    inventory = build_inventory(kube.snapshot().documents).inventory
    assert [p.id for p in inventory.pods] == ["dev/web"] and [p.name for p in inventory.policies] == ["allow"]
    broken = netpol("dev/broken", {"app": "web"}, {"app": "client"}, port=70000)
    apiserver.create(broken)
    wait_until(lambda: len(kube.snapshot().documents) == 4, what="the bad policy")
    with pytest.raises(Exception) as failure:
        build_inventory(kube.snapshot().documents)
    assert str(failure.value).startswith(
        "/apis/networking.k8s.io/v1/namespaces/dev/networkpolicies/broken: NetworkPolicy dev/broken: spec.ingress[0].ports[0].port"
    )
