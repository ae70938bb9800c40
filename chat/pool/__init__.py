"""The pool of KoboldCpp servers: backend rows, their seeding from the settings, their
health, and the choice of one for each reply."""
