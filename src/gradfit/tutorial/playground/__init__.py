"""The learner's playground: a local web app (Starlette) over gradfit's solvers; see :mod:`.server`."""
