"""The embedded default model: a tiny Qwen2 built locally, so ``azr train`` runs with no model hub.

    from azr.embedded import resolve_model_path
    path = resolve_model_path("embedded:tiny")   # builds once into the cache, then reuses it
    model = AutoModelForCausalLM.from_pretrained(path)

Any other name or path is passed through unchanged.
"""

from azr.embedded.build import BuildConfig, BuildInfo, build_embedded_model
from azr.embedded.resolve import EMBEDDED_MODELS, default_cache_root, embedded_model_dir, resolve_model_path

__all__ = [
    "EMBEDDED_MODELS",
    "BuildConfig",
    "BuildInfo",
    "build_embedded_model",
    "default_cache_root",
    "embedded_model_dir",
    "resolve_model_path",
]
