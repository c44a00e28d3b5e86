"""Images: ingestion, the private releases, the image synthesiser and the image audit.

* :mod:`~synthdata.images.ingest` — image folders and arrays in, release files out;
* :mod:`~synthdata.images.releases` — the private label counts, mean embeddings and the
  DP-SGD discriminator the model reads images through;
* :mod:`~synthdata.images.networks` — generator, discriminator, random features;
* :mod:`~synthdata.images.estimator` — :class:`ImageGAN`;
* :mod:`~synthdata.images.audit` — utility, fidelity and leakage of synthetic images;
* :mod:`~synthdata.images.modality` — images as a release modality.
"""

from .ingest import ImageSet, is_image_input, parse_image_size, read_images, write_images

__all__ = ["ImageGAN", "ImageSet", "is_image_input", "parse_image_size", "read_images", "write_images"]


def __getattr__(name: str):
    # The estimator imports torch (seconds): load it on first use only.
    if name == "ImageGAN":
        from .estimator import ImageGAN

        return ImageGAN
    raise AttributeError(f"module 'synthdata.images' has no attribute {name!r}")
