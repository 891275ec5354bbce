"""``python -m litecoord.cli``: how ``work --workers N`` starts its processes."""

from .commands import main

main()
