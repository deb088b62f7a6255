"""Run by tests/test_speed_scale.py under ``torchrun --nproc_per_node 2``: one launch, three checks.

    torchrun --standalone --nproc_per_node 2 tests/_torchrun_job.py WORK PHOTOS TINY_MODEL

1. a small DDP run: after training, every rank's parameters are gathered (they must be
   equal: DDP averaged the gradients) with the photos each rank drew at step 0 (disjoint);
2. the acceptance command ``tinct train --model unet ... --distributed`` through the CLI entry point;
3. ``tinct colorize PHOTOS -o OUT --distributed`` twice (the second finds all done).

Each rank writes WORK/rank{RANK}.json; the test reads them and the captured output.
"""
import json
import os
import sys
from pathlib import Path

import torch

from tinct import cli, distributed
from tinct.batch import plan_jobs
from tinct.train import Trainer, TrainConfig

torch.set_num_threads(1)
work, photos, tiny = (Path(a) for a in sys.argv[1:4])
rank = int(os.environ["RANK"])
report = {}


def tinct(*argv):
    try:
        cli.main(list(map(str, argv)))
    except SystemExit as e:
        return e.code
    return 0


cfg = TrainConfig(model="unet", model_options={"base_channels": 8, "depth": 2}, data=[str(photos)],
                  out=str(work / "sync"), steps=2, size=32, batch=2, val_every=1000, checkpoint_every=1000,
                  distributed=True)
trainer = Trainer(cfg)
drawn = trainer.photo_indices(0).tolist()
trainer.run()
params = torch.cat([p.detach().flatten() for p in trainer.model.parameters()]).tolist()
gathered = [None] * trainer.ctx.world
torch.distributed.all_gather_object(gathered, {"rank": rank, "drawn": drawn, "params": params})
report["ranks"] = gathered

# the process group stays up for this one (joining a second group in one process is not what torchrun runs do:
# the rendezvous store still holds the first group's keys); train() leaves it at the end
report["train_exit"] = tinct("train", "--model", "unet", "--data", photos, "--out", work / "run", "--steps", 3,
                             "--size", 64, "--distributed")
assert not torch.distributed.is_initialized()

report["shard"] = [str(j.src) for j in distributed.shard(plan_jobs([photos], work / "out"), distributed.from_env())]
report["colorize_exit"] = [tinct("colorize", photos, "-o", work / "out", "--model", tiny, "--distributed")
                           for _ in range(2)]
(work / f"rank{rank}.json").write_text(json.dumps(report))
