"""The live progress line: laid out for the terminal's width (tested directly), and `nnctl train` in a real
pseudo-terminal of 80 and 100 columns, its output replayed on a small terminal emulator to get the screen a
user sees."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nnctl.cli.progress import RESERVED, LiveLine, clock
from nnctl.training.events import EpochStats

from conftest import ROOT

# --- the line's layout --------------------------------------------------------------------------------------


def _stats(epoch: int, total: int, regression: bool = False) -> EpochStats:
    validation = ({"loss": 0.25, "mae": 0.4, "rmse": 0.5, "r2": 0.8} if regression else
                  {"loss": 0.0399, "accuracy": 0.9667, "precision": 0.97, "recall": 0.96, "f1": 0.9666})
    return EpochStats(epoch=epoch, epochs=total, train_loss=0.0436, seconds=0.01, learning_rate=0.003,
                      train={"accuracy": 0.98}, validation=validation)


def _line(width: int, monitor: str | None = None, epoch: int = 185, total: int = 3000, finished: bool = False,
          regression: bool = False) -> str:
    clock_ = iter([100.0, 102.0, 102.0])  # started, then two seconds in (finished, or drawn)
    line = LiveLine(total, 0, monitor, now=lambda: next(clock_))
    line.update(_stats(epoch, total, regression))
    if finished:
        line.finish()
    text = line.render(width).plain
    assert len(text) <= width and "…" not in text, text
    return text


@pytest.mark.parametrize("width", [77, 97, 137])  # the room on 80, 100 and 140 columns
def test_the_essentials_stay_whole_at_every_width(width):
    text = _line(width)
    assert text.startswith("epoch  185/3000")
    assert "loss 0.0436" in text and "val_loss 0.0399" in text
    assert re.search(r"eta \d+:\d\d", text)


def test_eighty_columns_drop_what_does_not_fit_whole():
    assert _line(77) == "epoch  185/3000  eta 0:30  loss 0.0436  val_loss 0.0399  val_accuracy 0.9667"
    assert _line(77, finished=True) == "epoch  185/3000  ━━━━━━━━━━━━━━━━  elapsed 0:02  loss 0.0436  val_loss 0.0399"


def test_a_hundred_columns_show_the_rest():
    text = _line(97)
    assert text.endswith("loss 0.0436  val_loss 0.0399  val_accuracy 0.9667  lr 0.003")
    assert "━" in text  # a bar in the room left
    assert _line(97, regression=True).endswith("loss 0.0436  val_loss 0.2500  val_r2 0.8000  lr 0.003")


def test_the_watched_metric_is_an_essential():
    assert _line(77, monitor="val_f1").startswith("epoch  185/3000  eta 0:30  loss 0.0436  val_f1 0.9666  val_loss")
    assert "train_accuracy 0.9800" in _line(60, monitor="train_accuracy")
    assert _line(50, monitor="val_accuracy") == "epoch  185/3000  loss 0.0436  val_accuracy 0.9667"
    assert _line(45, monitor="val_accuracy") == "epoch  185/3000  eta 0:30  loss 0.0436"  # too narrow for it


def test_a_very_narrow_terminal_keeps_the_counter():
    assert _line(30) == "epoch  185/3000  loss 0.0436"
    assert _line(16) == "epoch  185/3000"
    assert _line(10) == "epoch  185"  # cropped, never wrapped


def test_time_column():
    assert [clock(s) for s in (0, 7.4, 65, 3599.6, 3725)] == ["0:00", "0:07", "1:05", "1:00:00", "1:02:05"]
    line = LiveLine(100, 40, None)  # resumed after epoch 40: no estimate before this run's first epoch
    assert "eta -:--" in line.render(80).plain


# --- a real terminal ----------------------------------------------------------------------------------------


class Screen:
    """Enough of a VT100 for rich's live display: printable characters with deferred auto-wrap (counted),
    CR, LF, backspace, erase in line, cursor movement; colours and modes are ignored."""

    CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z])")

    def __init__(self, width: int) -> None:
        self.width, self.rows, self.row, self.col, self.wraps = width, [[]], 0, 0, 0

    def _line(self) -> list[str]:
        while len(self.rows) <= self.row:
            self.rows.append([])
        return self.rows[self.row]

    def feed(self, text: str) -> Screen:
        i = 0
        while i < len(text):
            match = self.CSI.match(text, i) if text[i] == "\x1b" else None
            if match:
                self._control(match.group(2), int(match.group(1)) if match.group(1).isdigit() else None)
                i = match.end()
                continue
            char = text[i]
            if char == "\r":
                self.col = 0
            elif char == "\n":
                self.row += 1
                self._line()
            elif char == "\b":
                self.col = max(0, self.col - 1)
            elif char >= " ":
                if self.col >= self.width:  # the line was full: this character wraps
                    self.wraps, self.row, self.col = self.wraps + 1, self.row + 1, 0
                line = self._line()
                line.extend(" " * (self.col + 1 - len(line)))
                line[self.col] = char
                self.col += 1
            i += 1
        return self

    def _control(self, command: str, n: int | None) -> None:
        if command == "K":
            line = self._line()
            del line[0 if n == 2 else min(self.col, len(line)):]
        elif command == "A":
            self.row = max(0, self.row - (n or 1))
        elif command == "B":
            self.row += n or 1
        elif command == "C":
            self.col = min(self.width, self.col + (n or 1))
        elif command == "D":
            self.col = max(0, self.col - (n or 1))
        elif command == "G":
            self.col = (n or 1) - 1

    def lines(self) -> list[str]:
        return ["".join(line).rstrip() for line in self.rows]


def run_in_pty(args: list[str], columns: int, press_ctrl_c: Callable[[str], bool] | None = None,
               timeout: float = 120) -> tuple[int, str]:
    """`python -m nnctl ARGS` on a pseudo-terminal of `columns` x 24; its exit code and raw output. Ctrl-C is
    typed (the terminal echoes ^C and signals the process) once `press_ctrl_c(output so far)` is true."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal's size set before Python starts, as a terminal window's is
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
            os.chdir(ROOT)
            env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
            env.update(COLUMNS=str(columns), LINES="24", TERM="xterm-256color")
            os.execve(sys.executable, [sys.executable, "-m", "nnctl", *args], env)
        finally:
            os._exit(127)
    output, pressed, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if press_ctrl_c and not pressed and press_ctrl_c(output.decode(errors="replace")):
                os.write(fd, b"\x03")
                pressed = True
            if select.select([fd], [], [], 0.05)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
        else:
            os.kill(pid, 9)
            pytest.fail(f"nnctl did not finish in {timeout} s:\n{output.decode(errors='replace')[-2000:]}")
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), output.decode(errors="replace")
    finally:
        os.close(fd)


ANSI = re.compile(r"\x1b\[[?0-9;]*[A-Za-z]")
PROGRESS = re.compile(r"^epoch +(\d+)/(\d+)\b")


def _segments(output: str) -> list[str]:
    """What was written between carriage returns and line feeds, colours stripped."""
    return [part for line in ANSI.sub("", output).split("\n") for part in line.split("\r")]


def test_training_on_80_columns(tmp_path):
    code, output = run_in_pty(["train", "configs/iris.yaml", "--epochs", "600", "-o", str(tmp_path / "m.npz")], 80)
    assert code == 0, output
    screen = Screen(80).feed(output)
    lines = screen.lines()
    progress = [line for line in lines if PROGRESS.match(line)]
    assert len(progress) == 1, lines  # one line, updated in place
    assert PROGRESS.match(progress[0]).groups() == ("600", "600"), progress[0]  # type: ignore[union-attr]
    assert "…" not in output  # nothing cut short: not the progress, not the summary's paths
    assert "loss " in progress[0] and "val_loss " in progress[0]
    assert re.search(r"elapsed \d+:\d\d", progress[0])
    drawn = [s for s in _segments(output) if PROGRESS.match(s)]
    assert len(drawn) >= 2 and all(re.search(r"(eta|elapsed) \d+:\d\d|eta -:--", s) for s in drawn), drawn
    assert all(len(s) <= 80 - RESERVED for s in drawn)
    assert all(len(s) <= 80 for s in _segments(output)), [s for s in _segments(output) if len(s) > 80]
    assert screen.wraps == 0, lines
    # the header wraps between words, not inside one
    header = " ".join(lines[: lines.index(progress[0])])
    assert header.startswith("training classification network 4 → 8 → 8 → 3 (139 parameters)")
    assert header.endswith("validating on 30, 600 epochs") and "  " not in header
    assert "training summary" in output and Path(tmp_path / "m.npz").exists()


def test_ctrl_c_on_100_columns_leaves_one_progress_line(tmp_path):
    def mid_training(output: str) -> bool:
        return bool(re.search(r"epoch +[1-9]\d*/100000", ANSI.sub("", output)))

    code, output = run_in_pty(["train", "configs/iris.yaml", "--epochs", "100000", "-o", str(tmp_path / "m.npz")],
                              100, press_ctrl_c=mid_training)
    assert code == 130, output
    lines = Screen(100).feed(output).lines()
    progress = [line for line in lines if PROGRESS.match(line)]
    assert len(progress) == 1, lines
    epoch = int(PROGRESS.match(progress[0]).group(1))  # type: ignore[union-attr]
    assert f"interrupted after epoch {epoch} of 100000; checkpoint saved" in output
    assert "lr 0.003" in progress[0] and "val_accuracy" in progress[0]  # 100 columns show the rest
    assert all(len(s) <= 100 - RESERVED for s in _segments(output) if PROGRESS.match(s))
    assert not Path(tmp_path / "m.npz").exists() and Path(tmp_path / "m.ckpt.npz").exists()
