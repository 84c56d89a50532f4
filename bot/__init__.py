"""Thai citizen-service assistant: catalog, domain logic, NLU components and gateway.

Submodules are imported explicitly; this package imports nothing so that the Rasa
environment can load `bot.nlu` without the application's dependencies.
"""
