"""Tables: the tabular synthesiser and its stages.

* :mod:`~synthdata.tabular.encoding` — every column as discrete levels, released privately;
* :mod:`~synthdata.tabular.marginals` — the selected, noisy 2-way marginals;
* :mod:`~synthdata.tabular.networks` — the generator and the exactly-clipped discriminator;
* :mod:`~synthdata.tabular.training` — fitting the generator to the marginals and the
  DP-SGD discriminator;
* :mod:`~synthdata.tabular.sampling` — streaming synthetic rows to CSV;
* :mod:`~synthdata.tabular.estimator` — :class:`TabularGAN`, the estimator tying them together;
* :mod:`~synthdata.tabular.modality` — tables as a release modality.

Ingestion (:mod:`synthdata.ingest`) and the schema (:mod:`synthdata.schema`) are shared
with other table-shaped modalities and live in the engine.
"""

__all__ = ["TabularGAN"]


def __getattr__(name: str):
    # The estimator imports torch (seconds): load it on first use only.
    if name == "TabularGAN":
        from .estimator import TabularGAN

        return TabularGAN
    raise AttributeError(f"module 'synthdata.tabular' has no attribute {name!r}")
