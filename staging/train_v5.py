"""Train base candidate v5: v4o's recipe, shortened to fit `hubkit micro check`'s 150-minute rebuild bar on 2 cores.

v4o recorded 151.1 minutes for the base alone (VAE 6,000 steps, UNet + text 11,000 + 5,000). v5: VAE 5,000, UNet
8,000 + 3,500, every stage on torch's fused AdamW (8% less per step). Everything else is v4o's.
Run from the repository root: `python staging/train_v5.py [work dir]` (resumes from the work dir's checkpoints).
"""
import sys
from pathlib import Path

from hubkit_micro.build import SD_CONFIG, SD_RECIPE
from hubkit_micro.sd_config import MicroSDConfig
from hubkit_micro.train_sd import train_sd

V5 = {**SD_RECIPE, "vae_steps": 5000, "unet_steps": 8000, "unet_finetune_steps": 3500, "fused_adam": True}

if __name__ == "__main__":
    work = Path(sys.argv[1] if len(sys.argv) > 1 else ".hubkit-cache/train_sd_v5")
    train_sd(Path("staging/base-v5"), seed=0, work_dir=work, config=MicroSDConfig(**SD_CONFIG), quiet=True, **V5)
