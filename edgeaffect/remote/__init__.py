"""The user's own devices, reached over SSH from the desktop: named remotes, the bundle copied
and checked there, the device-side command run with a timeout, its figures brought back and
kept as measurements that calibrate the device estimates.

Transport is the system's OpenSSH client (``ssh``), so keys, agents, ``~/.ssh/config`` and
jump hosts work as they do for the user; nothing here stores a password."""
