"""Signal dispositions of the MultiProc workers (imported by the forkserver only).

A Ctrl-C in a terminal reaches every process of the foreground group. The workers ignore
SIGINT, so that no worker prints a ``KeyboardInterrupt`` traceback; the main process stops
them (see :func:`bids_infantage.cli.interrupts.interrupt_handler`). Python's forkserver restores, in
each forked worker, the SIGINT disposition that was in place when its preload modules had
been imported, which is this one.
"""
import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
