"""nftables: typed objects (objects.py), IR -> objects (compile.py), objects -> text (render.py)."""
