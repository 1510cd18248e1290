"""Index templates (JSON files in this package) and the pure loader that turns them into index bodies."""

from mappings.loader import (
    IMAGE_VECTOR,
    SCHEMA_VERSION,
    TEXT_VECTOR,
    VECTOR_FIELDS,
    AnalysisConfig,
    IndexSettings,
    IndexSpec,
    ModelFacts,
    VectorConfig,
    analysis_settings,
    build_enriched_body,
    build_index_body,
    check_mapping_against_model,
    load_synonyms,
    load_template,
)

__all__ = [
    "IMAGE_VECTOR", "SCHEMA_VERSION", "TEXT_VECTOR", "VECTOR_FIELDS", "AnalysisConfig", "IndexSettings", "IndexSpec", "ModelFacts",
    "VectorConfig", "analysis_settings", "build_enriched_body", "build_index_body", "check_mapping_against_model",
    "load_synonyms", "load_template",
]
