"""`python -m gateway.recording.replay …` is the same as `gateway replay …`."""

import sys

from gateway.recording.replay.player import main

sys.exit(main())
