"""`python -m worker`: run one job from the container env and exit 0 (succeeded) or 1 (failed)."""

import gc
import logging
import os
import sys

# Importing yt-dlp creates tens of thousands of long-lived objects and no garbage: collecting
# while it happens only costs start-up time. Afterwards they are frozen out of later collections.
gc.disable()
from worker.runner import main  # noqa: E402

gc.freeze()
gc.enable()

code = main()
# The job has reported, its files are gone and its threads are idle: leave without the
# interpreter's teardown of every imported module (yt-dlp, the Azure SDK), which takes a few
# tenths of a second and does nothing a finished container needs.
logging.shutdown()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
