"""`python -m worker`: run one job from the container env and exit 0 (succeeded) or 1 (failed)."""

import gc
import logging
import os
import resource
import sys

from worker.blob_process import BlobProcess

# First of all, while this process has a single thread and nothing heavy imported: fork the
# upload process. It imports the Azure SDK on the other core while yt-dlp is imported here.
blob_process = BlobProcess.start("fork")

# Importing yt-dlp creates tens of thousands of long-lived objects and no garbage: collecting
# while it happens only costs start-up time. Afterwards they are frozen out of later collections.
gc.disable()
from worker.runner import main  # noqa: E402

gc.freeze()
gc.enable()

# Whatever happens below, the process exits with a code: an ended container is how the
# orchestration learns about a worker that could not report (issue 19).
code = 1
upload_peak_kib = None
try:
    code = main(blob_process=blob_process)
except BaseException:  # noqa: BLE001, S110 - exit 1: the container's state tells the orchestration
    pass
finally:
    try:
        upload_peak_kib = blob_process.close()
    except BaseException:  # noqa: BLE001, S110 - the upload process dies with us (`_die_with_parent`)
        pass
try:
    # The benchmark adds these up: the two processes' peaks are what the container must hold.
    logging.getLogger("worker").info(
        "peak RSS: job process %d KiB, upload process %s KiB",
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        upload_peak_kib if upload_peak_kib is not None else "unknown",
    )
    # The job has reported, its files are gone and its threads are idle: leave without the
    # interpreter's teardown of every imported module (yt-dlp, the Azure SDK), which takes a few
    # tenths of a second and does nothing a finished container needs.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
finally:
    os._exit(code)
