"""app: the `codi-lens` application, the one place that joins codi, interp, probes and viz.

The command line (`app.cli`, the console script `codi-lens`, also `python -m app`), what each subcommand does
(`app.commands`), the end-to-end demo (`app.demo`, `app.demo_setup`, `app.demo_report`), the cross-model
comparison (`app.compare`) and the model-spec loader (`app.model_spec`). Library packages import nothing from here.

    >>> from app.cli import main
    >>> from app.model_spec import load_for_cache
"""
