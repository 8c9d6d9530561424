"""pytest's root: the docstring examples of src/dropkit are collected by importing their modules, and
dropkit.convert.integrations' timm and peft glue import torchvision, which needs the test shim beside a
CPU torch (tests/_helpers/torchvision_shim.py). Installed here so any subset of paths collects alike."""

from _helpers import torchvision_shim

torchvision_shim.install()
