"""The contracts between stages, each defined once (docs/design.md rule 2).

- :mod:`ecom_kfp.contracts.tables`: Arrow schemas of the products, rejects and duplicates tables,
  and the reject record (one row of a rejects table, once its stage is known).
- :mod:`ecom_kfp.contracts.business_value`: the per-category business value table ingest and
  evaluate both read.
- :mod:`ecom_kfp.contracts.layouts`: the files each stage writes under its output URI.
- :mod:`ecom_kfp.contracts.features`: the TFRecord feature spec and the image preprocessing that
  the builder, the trainer, the evaluator and the serving signature share.
- :mod:`ecom_kfp.contracts.labels`: the per-level label vocabulary files.
"""
