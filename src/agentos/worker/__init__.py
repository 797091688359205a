"""The worker: everything that runs tasks' handlers.

    loop.py        the Worker: claims, runs and records tasks straight on the database
    outcomes.py    how a handler's end (return, raise, timeout, cancel) ends its attempt
    handlers/      handler kinds (python, command, http, llm) and the handler's context
    starters/      the starter agents' python handlers (templates/*.yaml name them)
    instances.py   worker instances: who runs, where, for which agents, alive or not
"""
