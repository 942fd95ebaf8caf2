"""Runs a docker CLI command (attach or exec -it) in a pseudo-terminal, as a user at a
terminal would: waits for its shell to echo a typed command, sends the detach keys
(given in hex), and reports whether the CLI then ended, and how.

    python3 pty_detach.py 1011 docker attach box

Prints "EXIT <code>" then what the terminal showed; exits 3 if the CLI did not end
within 10 s of the keys (it is killed)."""

import os
import pty
import select
import sys
import time

keys = bytes.fromhex(sys.argv[1])
argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

seen = b""


def read_for(seconds, until=lambda: False):
    global seen
    end = time.time() + seconds
    while time.time() < end and not until():
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            seen += data


# The shell answers once the CLI has attached and put the terminal in raw mode.
deadline = time.time() + 20
while b"mark2" not in seen and time.time() < deadline:
    os.write(fd, b"echo mark$((1+1))\r")
    read_for(1, lambda: b"mark2" in seen)
if b"mark2" not in seen:
    os.kill(pid, 9)
    print("NEVER ATTACHED")
    print(seen.decode(errors="replace"))
    sys.exit(3)
os.write(fd, keys)
end = time.time() + 10
while time.time() < end:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print("EXIT", os.waitstatus_to_exitcode(status))
        print(seen.decode(errors="replace"))
        sys.exit(0)
    read_for(0.1)
os.kill(pid, 9)
print("NOT DETACHED")
print(seen.decode(errors="replace"))
sys.exit(3)
