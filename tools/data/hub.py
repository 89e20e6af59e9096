"""Hub datasets for the DataEngineer: search with filters, inspection, column mapping, loading.

Search and inspection make the requests ``HfApi.list_datasets`` and ``dataset_info`` make (parsed
with huggingface_hub's ``DatasetInfo``), through our cached, rate-limited client (base URL
``HF_ENDPOINT``); sample rows come from the datasets-server (``POSTLAB_DATASETS_SERVER_URL``).
Loading goes through ``datasets.load_dataset``. Any outage raises ServiceUnavailable so the caller
falls back to the bundled task catalog.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import httpx
from huggingface_hub.hf_api import DatasetInfo
from pydantic import BaseModel, Field

from postlab.tools.data.columns import (
    ColumnMapping,
    ColumnMappingError,
    HubDatasetError,
    map_columns,
    rows_to_examples,
)
from postlab.tools.io.http import HttpClient, HttpStatusError, ServiceUnavailable, using
from postlab.tools.papers.hf_papers import check_hf_online, hf_client
from postlab.tools.tasks.catalog import Example

DATASETS_SERVER_URL = "https://datasets-server.huggingface.co"
SIZE_CATEGORIES = (
    "n<1K",
    "1K<n<10K",
    "10K<n<100K",
    "100K<n<1M",
    "1M<n<10M",
    "10M<n<100M",
    "100M<n<1B",
    "1B<n<10B",
    "10B<n<100B",
    "100B<n<1T",
    "n>1T",
)


class HubDataset(BaseModel):
    """A search hit: repo id, popularity, and license and size read from its tags."""

    id: str
    downloads: int = 0
    likes: int = 0
    license: str | None = None
    size_category: str | None = None
    task_categories: list[str] = Field(default_factory=list)
    gated: bool = False


class DatasetInspection(BaseModel):
    """A dataset's card facts, features, sample rows and the column mapping they allow."""

    id: str
    license: str | None = None
    size_category: str | None = None
    num_rows: int | None = None
    task_categories: list[str] = Field(default_factory=list)
    config: str | None = None
    split: str | None = None
    features: dict[str, str] = Field(default_factory=dict)
    rows: list[dict[str, Any]] = Field(default_factory=list)
    mapping: ColumnMapping | None = None
    mapping_error: str | None = None
    notes: list[str] = Field(default_factory=list)


def datasets_server_client() -> HttpClient:
    """The datasets-server client (``POSTLAB_DATASETS_SERVER_URL``)."""
    return HttpClient.from_env(
        "datasets_server", DATASETS_SERVER_URL, "POSTLAB_DATASETS_SERVER_URL", 0.2
    )


def _tag(tags: list[str], prefix: str) -> list[str]:
    return [t.split(":", 1)[1] for t in tags if t.startswith(f"{prefix}:")]


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        return str(value[0]) if value else None
    return str(value) if value else None


def search_datasets(
    query: str,
    task: str | None = None,
    size: str | None = None,
    license: str | None = None,
    limit: int = 20,
    client: HttpClient | None = None,
) -> list[HubDataset]:
    """Datasets matching a query, filtered by task category, size category and license."""
    if size and size not in SIZE_CATEGORIES:
        allowed = ", ".join(SIZE_CATEGORIES)
        raise HubDatasetError(f"unknown size {size!r}; expected one of {allowed}")
    params: list[tuple[str, Any]] = [("search", query)]
    for key, value in (("task_categories", task), ("size_categories", size), ("license", license)):
        if value:
            params.append(("filter", value if value.startswith(f"{key}:") else f"{key}:{value}"))
    params += [("sort", "downloads"), ("limit", limit)]
    check_hf_online()
    with using(client, hf_client) as http:
        items = http.get_json("/api/datasets", params)
    found = []
    for item in items if isinstance(items, list) else []:
        info = DatasetInfo(**item)
        tags = list(info.tags or [])
        found.append(
            HubDataset(
                id=info.id,
                downloads=info.downloads or 0,
                likes=info.likes or 0,
                license=_first(_tag(tags, "license")),
                size_category=_first(_tag(tags, "size_categories")),
                task_categories=_tag(tags, "task_categories"),
                gated=bool(info.gated),
            )
        )
    return found[:limit]


def _type_name(spec: Any) -> str:
    """A short readable type for a datasets-server or card feature spec."""
    if isinstance(spec, list):
        return f"list[{_type_name(spec[0]) if spec else '?'}]"
    if not isinstance(spec, dict):
        return str(spec)
    kind = spec.get("_type")
    if kind in ("List", "Sequence", "LargeList"):
        return f"list[{_type_name(spec.get('feature'))}]"
    if "dtype" in spec:
        return str(spec["dtype"])
    if "list" in spec:
        return f"list[{_type_name(spec['list'])}]"
    if kind == "ClassLabel":
        return "class_label"
    fields = sorted(k for k in spec if not k.startswith("_"))
    return "struct{" + ",".join(fields) + "}"


def _card_facts(card: dict[str, Any], config: str | None) -> tuple[dict[str, str], int | None]:
    infos = card.get("dataset_info") or []
    infos = [infos] if isinstance(infos, dict) else infos
    info = next((i for i in infos if config is None or i.get("config_name") == config), None)
    if not info:
        return {}, None
    features = {
        f["name"]: _type_name({k: v for k, v in f.items() if k != "name"})
        for f in info.get("features") or []
        if isinstance(f, dict) and "name" in f
    }
    rows = sum(int(s.get("num_examples") or 0) for s in info.get("splits") or []) or None
    return features, rows


def inspect_dataset(
    repo_id: str,
    config: str | None = None,
    split: str | None = None,
    sample: int = 5,
    hub: HttpClient | None = None,
    server: HttpClient | None = None,
) -> DatasetInspection:
    """Card (license, size, features), sample rows, and the TRL column mapping they allow."""
    check_hf_online()
    with using(hub, hf_client) as http:
        response = http.get(f"/api/datasets/{repo_id}")
    if response.status == 404:
        raise HubDatasetError(f"dataset {repo_id!r} not found on the Hub")
    if not 200 <= response.status < 300:
        raise HttpStatusError("hf", response.status, response.url, response.text)
    info = response.json()
    tags, card = info.get("tags") or [], info.get("cardData") or {}
    features: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    try:
        with using(server, datasets_server_client) as ds:
            if config is None or split is None:
                splits = ds.get_json("/splits", {"dataset": repo_id}).get("splits") or []
                splits = [s for s in splits if config in (None, s.get("config"))]
                wanted = split or "train"
                pick = next((s for s in splits if s.get("split") == wanted), None)
                pick = pick or (splits[0] if splits else {})
                config, split = config or pick.get("config"), split or pick.get("split")
            if config and split:
                params = {"dataset": repo_id, "config": config, "split": split}
                first = ds.get_json("/first-rows", params)
                features = {f["name"]: _type_name(f["type"]) for f in first["features"]}
                rows = [r["row"] for r in first.get("rows", [])[:sample]]
    except (ServiceUnavailable, HttpStatusError, KeyError) as error:
        notes.append(f"sample rows unavailable ({error}); features from the dataset card")
    card_features, num_rows = _card_facts(card, config)
    result = DatasetInspection(
        id=repo_id,
        license=_first(card.get("license")) or _first(_tag(tags, "license")),
        size_category=_first(card.get("size_categories")) or _first(_tag(tags, "size_categories")),
        task_categories=list(card.get("task_categories") or _tag(tags, "task_categories")),
        num_rows=num_rows,
        config=config,
        split=split,
        features=features or card_features,
        rows=rows,
        notes=notes,
    )
    try:
        result.mapping = map_columns(result.features, result.rows)
    except ColumnMappingError as error:
        result.mapping_error = str(error)
    return result


def load_hub_examples(
    repo_id: str,
    mapping: ColumnMapping,
    split: str = "train",
    limit: int = 1000,
    config: str | None = None,
) -> list[Example]:
    """Stream up to ``limit`` rows through ``datasets.load_dataset`` and map them to Examples."""
    check_hf_online()
    import datasets as hf_datasets
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub.errors import HfHubHTTPError

    try:
        stream = hf_datasets.load_dataset(repo_id, name=config, split=split, streaming=True)
        rows = list(islice(stream, limit))
    except DatasetNotFoundError as error:
        raise HubDatasetError(f"dataset {repo_id!r} not found: {error}") from error
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status in (401, 403, 404):
            message = f"dataset {repo_id!r}: HTTP {status} (gated, private or missing)"
            raise HubDatasetError(message) from error
        raise ServiceUnavailable("hf", f"HTTP {status}: {error}") from error
    except (ConnectionError, TimeoutError, OSError, httpx.HTTPError) as error:
        # OfflineModeIsEnabled is a ConnectionError; network failures surface as either kind.
        raise ServiceUnavailable("hf", f"{type(error).__name__}: {error}") from error
    return rows_to_examples(rows, mapping)
