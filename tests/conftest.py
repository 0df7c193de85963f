"""The test process computes as the stages do: CPU numerics pinned first (tsp_pretrain.numerics).

Tests compare results computed here with stage outputs and committed hashes (the demo's
``data/demo`` in dvc.lock, for one), so this process must take the same kernels. Should a plugin
have loaded numpy already, pytest starts again with the settings in its environment.
"""

from tsp_pretrain.numerics import pin

pin(reexec=True)
