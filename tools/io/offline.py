"""The switch that keeps postlab off the network (cheap to import: the CLI reads it at start)."""

import os

# Set (by --offline, or by hand) to skip every network attempt.
OFFLINE_ENV = "POSTLAB_OFFLINE"

# The Hub's own switch and endpoint, as huggingface_hub reads them.
HUB_OFFLINE_ENV = "HF_HUB_OFFLINE"
HUB_ENDPOINT_ENV = "HF_ENDPOINT"
HUB_URL = "https://huggingface.co"
_TRUE = ("1", "true", "yes", "on")


def hub_offline() -> bool:
    """Whether the user has switched the Hub off (HF_HUB_OFFLINE, read as huggingface_hub does)."""
    return os.environ.get(HUB_OFFLINE_ENV, "").strip().lower() in _TRUE


def hub_endpoint() -> str:
    """The Hub's base URL: HF_ENDPOINT when set, else huggingface.co (no trailing slash)."""
    return (os.environ.get(HUB_ENDPOINT_ENV) or HUB_URL).rstrip("/")
