"""The Typer application, and what the CLI makes of the library's errors: one line on stderr, the exit code the
error carries, and the library's argument names turned into the flags that set them (`require` -> --fail-under).

Commands live in `nnctl.cli.commands` and `nnctl.cli.extras` (the optional ones); what they show is in
`nnctl.cli.render` and `nnctl.cli.progress`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from types import ModuleType
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from nnctl._version import __version__
from nnctl.cli.catalog import COMMANDS, DEBUG_HELP, ROOT_HELP, VERSION_HELP
from nnctl.cli.coerce import convert_without_pydantic
from nnctl.cli.console import escape, silence, stderr
from nnctl.errors import NnctlError, TrainingInterrupted

_Function = TypeVar("_Function", bound=Callable[..., Any])


class _FlagsTakeNoValue:
    """--help shows no value placeholder after a flag: Typer (0.29) writes `--quiet <bool>`, as if it took one.
    And values are converted without pydantic where they can be (`nnctl.cli.coerce`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""  # shown as the placeholder; a flag's errors name its option, never this
        convert_without_pydantic(params)
        return params


class _LightHelp:
    """Help is rendered by `typer.rich_utils`, which imports rich.markdown (with markdown_it and pygments) and
    rich.traceback (with rich.pretty and attrs) at its top, for a markup mode and pretty tracebacks nnctl does not
    use: about half of `nnctl --help`'s imports. It is imported with stand-ins for those two modules that import
    the real one if ever used."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _import_rich_utils()
        super().format_help(ctx, formatter)  # type: ignore[misc]


class _Command(_LightHelp, _FlagsTakeNoValue, TyperCommand):
    pass


class _Stub(TyperCommand):
    """A command whose module is not imported yet: its name and summary, for the command list of --help."""


class _Group(_LightHelp, _FlagsTakeNoValue, TyperGroup):
    """Commands are imported when run (`nnctl.cli.catalog`): until then each is a `_Stub` in the list."""

    def __init__(self, *args: Any, commands: dict[str, Any] | None = None, **kwargs: Any) -> None:
        loaded = dict(commands or {})
        listed = {name: loaded.pop(name, None) or _Stub(name=name, help=entry.summary)
                  for name, entry in COMMANDS.items()}
        super().__init__(*args, commands={**listed, **loaded}, **kwargs)
        self._listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Stub) and not self._listing:
            command = self.commands[cmd_name] = _load(cmd_name)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True  # the list shows the stubs' summaries; no command module is imported for it
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def _load(name: str) -> Any:
    """Import the module of command `name` and convert its registration into a click command."""
    import importlib

    importlib.import_module(COMMANDS[name].module)
    for info in app.registered_commands:
        assert info.callback is not None
        if (info.name or typer.main.get_command_name(info.callback.__name__)) == name:
            return typer.main.get_command_from_info(info, pretty_exceptions_short=app.pretty_exceptions_short,
                                                    rich_markup_mode=app.rich_markup_mode)
    raise AssertionError(f"nnctl.cli.catalog: {COMMANDS[name].module} registers no command {name!r}")


def _import_rich_utils() -> None:
    if "typer.rich_utils" in sys.modules:
        return
    stand_ins = {module: _stand_in(module, name) for module, name in (("rich.markdown", "Markdown"),
                                                                        ("rich.traceback", "Traceback"))
                 if module not in sys.modules}
    sys.modules.update(stand_ins)
    try:
        import typer.rich_utils  # noqa: F401
    finally:
        for module, stand_in in stand_ins.items():
            if sys.modules.get(module) is stand_in:
                del sys.modules[module]  # anyone else importing it gets the real module


def _stand_in(module: str, name: str) -> ModuleType:
    stand_in = ModuleType(module)
    setattr(stand_in, name, _Deferred(name, (), {"_target": (module, name)}))
    return stand_in


class _Deferred(type):
    """The class of a stand-in: calling it or reading one of its attributes imports the real class."""

    _target: tuple[str, str]

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._real()(*args, **kwargs)

    def __getattr__(cls, attr: str) -> Any:
        return getattr(cls._real(), attr)

    def _real(cls) -> Any:
        import importlib

        module, name = cls._target
        return getattr(importlib.import_module(module), name)


class _Typer(typer.Typer):
    """Every command is a `_Command`, without each `@app.command()` saying so."""

    def command(self, *args: Any, cls: type[TyperCommand] | None = None,
                **kwargs: Any) -> Callable[[_Function], _Function]:
        decorator: Callable[[_Function], _Function] = super().command(*args, cls=cls or _Command, **kwargs)
        return decorator


app = _Typer(
    cls=_Group,
    name="nnctl",
    help=ROOT_HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# The library's arguments that errors name (`NnctlError.arguments`), as the flags that set them.
FLAGS = {"overrides": "--set", "require": "--fail-under", "output": "-o", "resume": "--resume", "init": "--init",
         "threshold": "--threshold", "scheduler": "--scheduler", "workers": "--workers", "delimiter": "--delimiter",
         "decimal": "--decimal", "encoding": "--encoding", "strict": "--strict",
         "metric": "--metric", "repeats": "--repeats", "row": "--row", "top": "--top", "start": "--start",
         "end": "--end", "steps": "--steps"}


class Format(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


class LogFormat(StrEnum):
    text = "text"
    jsonl = "jsonl"


@contextmanager
def errors() -> Iterator[None]:
    """NnctlError -> one line on stderr and its exit code; Ctrl-C -> exit 130."""
    try:
        yield
    except typer.Exit:
        raise
    except NnctlError as exc:
        _debug_traceback()
        stderr.print(f"[bold red]error:[/] {escape(_one_line(exc.render(FLAGS)))}")
        raise typer.Exit(exc.exit_code) from None
    except MemoryError:
        _debug_traceback()
        stderr.print("[bold red]error:[/] out of memory; use a smaller network, batch_size or input")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        stderr.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from failing to flush stdout at exit.
        silence(sys.stdout.fileno())
        raise typer.Exit(0) from None
    except Exception as exc:  # a bug in nnctl: still one line, and the way to the details
        if _DEBUG:
            raise
        detail = escape(_one_line(f"{type(exc).__name__}: {exc}"))
        stderr.print(f"[bold red]error:[/] internal error ({detail}); this is a bug in nnctl: please report it "
                     "with the output of the same command run with --debug")
        raise typer.Exit(1) from None


_DEBUG = bool(os.environ.get("NNCTL_DEBUG"))


def debugging() -> bool:
    """Whether --debug (or NNCTL_DEBUG) asked for tracebacks."""
    return _DEBUG


def _one_line(text: str) -> str:
    """Errors are one line: newlines and other invisible characters in names or values are shown escaped."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _debug_traceback() -> None:
    if _DEBUG:
        import traceback

        traceback.print_exc()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nnctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help=VERSION_HELP)] = False,
    debug: Annotated[bool, typer.Option("--debug", help=DEBUG_HELP)] = False,
) -> None:
    """Train neural networks from YAML config files, and predict with them."""
    global _DEBUG
    _DEBUG = _DEBUG or debug


@contextmanager
def exit_130_on_interrupt(stop: Callable[[], None],
                           hint: Callable[[TrainingInterrupted], str | None] | None = None) -> Iterator[None]:
    """Ctrl-C or SIGTERM in the body: `stop` the live display, print what the library kept (and `hint`), exit 130."""
    try:
        with _sigterm_as_interrupt():
            yield
    except TrainingInterrupted as exc:
        stop()
        stderr.print(f"[yellow]{escape(exc.message)}[/]")
        extra = hint(exc) if hint is not None else None
        if extra:
            stderr.print(escape(extra))
        raise typer.Exit(130) from None


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """`kill` (SIGTERM) stops training like Ctrl-C does: with a checkpoint, not mid-write."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> None:
    """Console-script entry point: usage mistakes (unknown flag, missing argument, bad value) become one
    line on stderr and exit 2, like every other bad input."""
    from typer.exceptions import TyperException

    try:
        code = app(prog_name="nnctl", standalone_mode=False)
    except TyperException as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        if message:  # empty after `nnctl` alone, which has just shown the help
            stderr.print(f"[bold red]error:[/] {escape(_one_line(message + hint))}")
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
