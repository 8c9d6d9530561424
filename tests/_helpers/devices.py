"""What the tests run on: the devices present and the floating dtypes every variant supports."""

import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
