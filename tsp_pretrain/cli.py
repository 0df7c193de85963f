"""How every stage script ends: user errors as a short message, bugs with their traceback.

A user who points a param at the wrong file should read *which file, what is wrong, how to fix
it* -- not 75 lines of traceback with the message on the last one. A bug in our code, on the
other hand, needs its traceback. :func:`run_stage` tells the two apart by the exception's type
(:data:`USER_ERRORS`); ``TSP_LOG_LEVEL=DEBUG`` (or ``--verbose`` on any stage's command line)
shows the traceback of user errors too.

The user-error classes are named, not imported: importing ``tsp_pretrain.models.state_dicts``
here would pull torch into every stage (and into each stage's DVC dependencies). An exception can
only be an instance of a class whose module is already imported, so the check looks them up in
``sys.modules`` when an error happens.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable

from tsp_pretrain.numerics import write_run_record

# Errors whose message is written for the user (file, cause, fix): "module:ClassName".
USER_ERRORS: tuple[str, ...] = (
    "tsp_pretrain.config:ConfigError",
    "tsp_pretrain.annotations.schema:AnnotationError",
    "tsp_pretrain.evaluation.errors:EvaluationError",
    "tsp_pretrain.features.gvf:GVFTableError",
    "tsp_pretrain.features.localizers:LocalizerConfigError",
    "tsp_pretrain.models.crop:CropMismatchError",
    "tsp_pretrain.models.registry:UnknownBackboneError",
    "tsp_pretrain.models.state_dicts:WeightsError",
    "tsp_pretrain.numerics:NumericsError",
    "tsp_pretrain.sharding:ShardError",
    "tsp_pretrain.video.manifest:ManifestError",
    "tsp_pretrain.video.probe:VideoProbeError",
    "tsp_pretrain.video.store:FrameStoreError",
    "tsp_pretrain.video.decode:DecodeError",
    "tsp_pretrain.video.decode:DiskSpaceError",
    "tsp_pretrain.video.encode:EncodeError",
    "tsp_pretrain.video.official:OfficialRateError",
    "pydantic_core._pydantic_core:ValidationError",
    "builtins:FileNotFoundError",
    "builtins:IsADirectoryError",
    "builtins:NotADirectoryError",
)
VERBOSE_FLAG = "--verbose"
EXIT_USER_ERROR = 1
EXIT_INTERRUPTED = 130  # the shell's code for a process ended by SIGINT


def interrupted_message(name: str, kept: str | None) -> str:
    """The one line Ctrl-C prints: what the command keeps, and how to go on."""
    if kept is None:
        return f"\nInterrupted: {name} stopped; nothing of it is kept. Re-run it to start again."
    return (
        f"\nInterrupted: {name} stopped; {kept} is kept. Re-run the same command "
        "(or `dvc repro`) to resume from there."
    )


def _loaded_modules(module_name: str) -> list[object]:
    """The module ``module_name`` as imported, and as ``__main__`` when run by ``python -m``.

    Under ``python -m tsp_pretrain.features.localizers`` the module's classes live in
    ``__main__`` (a second copy of the module), so an error it raises is not an instance of the
    class imported under the module's own name.
    """
    modules = [sys.modules.get(module_name)]
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) == module_name:
        modules.append(main)
    return [m for m in modules if m is not None]


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` is one of :data:`USER_ERRORS` (a problem with the inputs, not a bug)."""
    for name in USER_ERRORS:
        module_name, _, class_name = name.partition(":")
        for module in _loaded_modules(module_name):
            cls = getattr(module, class_name, None)
            if isinstance(cls, type) and isinstance(err, cls):
                return True
    return False


def verbose() -> bool:
    """Tracebacks for user errors too: ``TSP_LOG_LEVEL=DEBUG``."""
    return os.environ.get("TSP_LOG_LEVEL", "").upper() == "DEBUG"


def run_stage(
    main: Callable[[], object], name: str | None = None, kept_on_interrupt: str | None = None
) -> None:
    """Run a stage's (or a ``python -m`` command's) ``main`` with the project's error handling.

    A user error ends the process with its message and exit code 1. Ctrl-C ends it with one line
    (exit code 130): ``kept_on_interrupt`` says what the command keeps of its work (e.g. "every
    video decoded so far"), so the user knows a re-run resumes; None: nothing is kept. Any other
    exception propagates unchanged: Python prints its traceback and exits non-zero, as it should
    for a bug. ``--verbose`` is taken off ``sys.argv`` (so the stage's own parser never sees it)
    and turns on ``TSP_LOG_LEVEL=DEBUG``, which adds tracebacks to both messages.
    """
    if VERBOSE_FLAG in sys.argv[1:]:
        sys.argv = [a for a in sys.argv if a != VERBOSE_FLAG]
        os.environ["TSP_LOG_LEVEL"] = "DEBUG"
    name = name or os.path.basename(sys.argv[0])
    try:
        main()
        if os.environ.get("DVC_STAGE"):  # which machine made a DVC stage's outputs (numerics)
            write_run_record(os.environ["DVC_STAGE"])
    except KeyboardInterrupt:
        if verbose():
            traceback.print_exc()
        logging.shutdown()
        sys.stderr.write(interrupted_message(name, kept_on_interrupt) + "\n")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as err:
        if not is_user_error(err):
            raise
        if verbose():
            traceback.print_exc()
        logging.shutdown()
        message = str(err) or type(err).__name__
        sys.stderr.write(
            f"\n{'=' * 78}\nERROR in {name}: {message}\n{'=' * 78}\n"
            f"(a problem with the inputs; run with TSP_LOG_LEVEL=DEBUG or {VERBOSE_FLAG} for the "
            "traceback)\n"
        )
        sys.exit(EXIT_USER_ERROR)
