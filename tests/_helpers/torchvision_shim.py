"""Test-only: lets the PyPI torchvision wheel import beside a CPU build of torch.

The PyPI wheel is built against CUDA torch. Beside the CPU torch its compiled ops library does
not load, so the schemas torchvision::nms and torchvision::qnms are never defined, and
`import torchvision` fails where it registers fake kernels for them ("operator torchvision::nms
does not exist"). timm and torchmetrics import torchvision. Defining the two schemas, with no
kernel, lets the import succeed; calling either op still raises. Nothing else is replaced.

Example:
    >>> from _helpers import torchvision_shim
    >>> torchvision_shim.install()
"""

from __future__ import annotations

import importlib.util
import sys

import torch

__all__ = ["install"]

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_libraries: list[torch.library.Library] = []  # kept alive: a Library's definitions die with it


def install() -> None:
    """Make `import torchvision` work: as it is where it can, else with the two schemas defined."""
    if _libraries or importlib.util.find_spec("torchvision") is None:
        return
    try:
        import torchvision  # noqa: F401  (a torchvision built for this torch imports as it is)

        return
    except RuntimeError as error:
        if "torchvision::nms does not exist" not in str(error):
            raise
    # The failed import left half-initialised modules behind; the retry must start afresh.
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _SCHEMAS:
        lib.define(schema)
    _libraries.append(lib)
    import torchvision  # noqa: F401,F811
