"""`python -m agent_sessions.runtime [options] -- COMMAND [ARG …]`: the runtime bridge."""

import sys

from .cli import main

sys.exit(main())
