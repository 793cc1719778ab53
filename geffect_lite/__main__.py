"""``python -m geffect_lite`` → :func:`geffect_lite.cli.main`."""

from geffect_lite.cli import main

main()
