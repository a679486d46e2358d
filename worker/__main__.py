"""`python -m worker`: run one job from the container env and exit 0 (succeeded) or 1 (failed)."""

from worker.runner import main

raise SystemExit(main())
