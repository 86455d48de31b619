"""How far to trust a map: localisation, faithfulness, baselines and sanity checks.

Every metric takes maps that were already computed (and, where it must, the model), never
computes maps of its own, and never reads files: masks come from the data layer.
"""
