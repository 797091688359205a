"""Local stand-ins for the outside systems the examples' handlers call: JSON over HTTP
on 127.0.0.1, each in a thread of the process that starts it (the demo, a test)."""
