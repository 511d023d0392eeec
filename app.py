"""Router-R1 Studio entry point: `python app.py [COMMAND] [OPTIONS]` (see `python app.py --help`).

    python app.py                      serve the web app (embedded default: CPU, no key, no network)
    python app.py ask "QUESTION" ...   run one routing session in the terminal
    python app.py eval --dataset ...   evaluate the router and baselines; `report`, `sessions`, `export`, `import`

The commands live in ui/cli.py; what they print in ui/terminal.py.
"""
from __future__ import annotations

import sys

from ui.cli import main

if __name__ == "__main__":
    sys.exit(main())
