"""The ``copilot`` command line (entry point ``ui.cli.app:main``), one module per group of commands.

These modules import the product's own packages and the heavy libraries inside each command, not
at the top: the one place in the product that does so, for start-up time (``copilot --help`` and
the quick read commands load neither the model runtime, Chroma nor Gradio).
"""
