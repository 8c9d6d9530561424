"""A progress hook that presses Ctrl-C for real: the lab's resume tests interrupt training with it."""

import os
import signal

from dropkit.lab import train


class InterruptAt(train.Progress):
    """Sends a real SIGINT (as Ctrl-C does) once `at` training steps have run."""

    def __init__(self, at):
        self.at, self.steps = at, 0

    def step(self, name, loss):
        self.steps += 1
        if self.steps == self.at:
            os.kill(os.getpid(), signal.SIGINT)
