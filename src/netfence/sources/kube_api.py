"""Every kind netfence reads, from a Kubernetes API server: one informer per kind (kube_watch.py),
their caches as one snapshot.

`snapshot()` turns the cached objects (JSON, camelCase, as the API server sends them) into the
same `Document` values the YAML loader builds, so the same registry, converters and checks
apply to both; an object's "file" in messages is its API path. The `kubernetes` client library
is imported in sources/ only (kube_api.py, kube_watch.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import urllib3
from kubernetes import client as _client
from kubernetes import config as _config
from kubernetes.client.exceptions import ApiException

from netfence.errors import NetfenceError
from netfence.sources.documents import Document, Source
from netfence.sources.kube_watch import Informer, ReconnectHook, Resource, WatchSettings, plural
from netfence.sources.registry import REGISTRY
from netfence.sources.snapshot import Snapshot

k8s_client: Any = _client
k8s_config: Any = _config

__all__ = ["KubeSource", "Resource", "WatchSettings", "configuration", "plural", "resources"]

CALICO_API = "projectcalico.org/v3"
CALICO_CRD = "crd.projectcalico.org/v1"
#: `--calico-api` choices: which Calico group to read (both hold the same objects when the Calico
#: API server runs, and reading both would define every Calico policy twice).
CALICO_CHOICES = ("auto", "v3", "crd", "none")


def resources(calico: str = "crd") -> list[Resource]:
    """Every kind of the registry, with one Calico group: `v3` (the Calico API server), `crd`
    (the CRDs underneath, which every Calico install has) or `none`."""
    if calico not in ("v3", "crd", "none"):
        raise NetfenceError(f"--calico-api: expected v3, crd or none, got {calico!r}")
    skipped = {"v3": CALICO_CRD, "crd": CALICO_API, "none": None}[calico]
    found = []
    for (api_version, kind), entry in sorted(REGISTRY.items()):
        if api_version == skipped or (calico == "none" and api_version in (CALICO_API, CALICO_CRD)):
            continue
        found.append(Resource(api_version, kind, plural(kind), entry.namespaced))
    return found


# --- connecting -------------------------------------------------------------------------------


def configuration(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """A `kubernetes.client.Configuration`: from `kubeconfig` (a path) or, with None, the pod's
    service account (in-cluster config)."""
    settings = k8s_client.Configuration()
    try:
        if kubeconfig is not None:
            k8s_config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=settings)
        else:
            k8s_config.load_incluster_config(client_configuration=settings)
    except (k8s_config.ConfigException, OSError, ValueError) as exc:
        where = kubeconfig or "in-cluster service account"
        raise NetfenceError(f"cannot configure the Kubernetes client from {where}: {exc}") from None
    return settings


def api_client(settings: Any, connections: int = 8) -> Any:
    """An ApiClient whose connection pool holds `connections` (one per open watch, plus lists)."""
    settings.connection_pool_maxsize = max(connections, settings.connection_pool_maxsize or 0)
    return k8s_client.ApiClient(settings)


def choose_calico(api: Any, wanted: str = "auto") -> str:
    """`auto`: the Calico API server's group when the server serves it, else the CRDs."""
    if wanted != "auto":
        return wanted
    group, _, version = CALICO_API.partition("/")
    try:
        response = k8s_client.CustomObjectsApi(api).get_api_resources(
            group, version, _preload_content=False, _request_timeout=(10.0, 30.0)
        )
        response.release_conn()
        return "v3"
    except (ApiException, urllib3.exceptions.HTTPError, OSError):
        return "crd"




class KubeSource:
    """Informers for every kind netfence reads; `snapshot()` is the cluster as last seen."""

    name = "kubernetes API"

    def __init__(
        self,
        configuration: Any,
        kinds: Sequence[Resource],
        settings: WatchSettings = WatchSettings(),
        on_reconnect: ReconnectHook | None = None,
    ) -> None:
        """`configuration`: a kubernetes.client.Configuration (see `configuration()`)."""
        self.api = api = api_client(configuration, len(kinds) + 4)
        self._notify: Callable[[], None] = lambda: None
        self.informers = [Informer(api, kind, self._changed, settings, on_reconnect) for kind in kinds]

    def _changed(self) -> None:
        self._notify()

    def start(self, notify: Callable[[], None]) -> None:
        self._notify = notify
        for informer in self.informers:
            informer.start()

    def stop(self) -> None:
        for informer in self.informers:
            informer.stop(wait=False)
        deadline = time.monotonic() + 5.0
        for informer in self.informers:
            informer.join(max(0.0, deadline - time.monotonic()))
        self.api.close()

    def synced(self) -> bool:
        return all(i.synced.is_set() for i in self.informers)

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for informer in self.informers:
            if not informer.synced.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def problems(self) -> list[str]:
        """Why the source is not (fully) connected, one line per kind; empty when it is."""
        return [
            f"{i.resource}: {i.last_error or 'not listed yet'}"
            for i in self.informers
            if not i.synced.is_set() or not i.connected or i.down_since is not None
        ]

    def outage(self) -> float:
        """Seconds since some kind could last be listed or watched (0: every kind can). Counts
        from the start for a kind never reached."""
        now = time.monotonic()
        return max((now - i.down_since for i in self.informers if i.down_since is not None), default=0.0)

    def snapshot(self) -> Snapshot:
        documents = []
        for informer in self.informers:
            resource = informer.resource
            for obj in informer.objects():
                meta = obj.get("metadata") or {}
                where = resource.object_path(meta.get("namespace"), str(meta.get("name") or "(unnamed)"))
                documents.append(Document(Source(where, ""), 0, None, obj))
        return Snapshot(documents, [], [])
