"""Pictures of results: heat-map overlays and ablation charts."""
