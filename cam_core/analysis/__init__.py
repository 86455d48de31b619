"""Analysis: batched maps of whole datasets, the analysis job, its artifacts, predictions."""
