"""Sample-addressed training: 1 process x 64, 2 DDP ranks x 32 (real gloo processes), 4 micro-batches x 16.

Masks are compared with torch.equal (same bits); weights after 20 SGD steps with
assert_close: the masks are equal, only the order of the gradient sums differs.
"""

import torch
import torch.nn.functional as F
from _helpers.dist import run_ranks
from _helpers.models import seed_network
from torch.nn.parallel import DistributedDataParallel

import dropkit

STEPS, BATCH = 20, 64


def _data():
    torch.manual_seed(1)
    return torch.randn(STEPS * BATCH, 784), torch.randint(0, 10, (STEPS * BATCH,))


def _train(net, model, first: int, size: int, micro: int):
    """SGD on global batches of BATCH rows; this process runs rows [first, first + micro*size) of each.

    Returns the weights and the keep masks of every dropout layer at step 0.
    """
    x, y = _data()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    masks = {}
    drops = [m for m in model.modules() if isinstance(m, dropkit.Dropout)]
    hooks = [
        d.register_forward_hook(lambda m, a, out, i=i: masks.setdefault(i, []).append(out != 0))
        for i, d in enumerate(drops)
    ]
    with dropkit.sample_addressed(model, seed=7) as addr:
        for step in range(STEPS):
            for m in range(micro):
                k0 = first + m * size
                rows = slice(step * BATCH + k0, step * BATCH + k0 + size)
                addr.set_step(step, sample_offset=k0)
                (F.cross_entropy(net(x[rows]), y[rows]) / micro).backward()
            opt.step()
            opt.zero_grad()
            if step == 0:
                for h in hooks:
                    h.remove()
    return model.state_dict(), [torch.cat(masks[i]) for i in range(len(drops))]


def _model():
    torch.manual_seed(0)
    return seed_network()


def _rank(rank, world, out):
    model = _model()
    result = _train(DistributedDataParallel(model), model, rank * BATCH // world, BATCH // world, 1)
    torch.save(result, f"{out}/rank{rank}.pt")


def test_masks_and_weights_do_not_depend_on_ranks_or_micro_batches(tmp_path):
    model = _model()
    weights, masks = _train(model, model, 0, BATCH, 1)
    run_ranks(_rank, 2, str(tmp_path), timeout=180)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    model = _model()
    accumulated = _train(model, model, 0, BATCH // 4, 4)
    for other in (accumulated, (ranks[0][0], [torch.cat(ms) for ms in zip(ranks[0][1], ranks[1][1])])):
        assert all(torch.equal(a, b) for a, b in zip(other[1], masks))
        for name, w in weights.items():
            torch.testing.assert_close(other[0][name], w, msg=name)
    assert all(torch.equal(ranks[0][0][k], ranks[1][0][k]) for k in weights)  # DDP keeps the replicas equal
