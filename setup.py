"""The one thing pyproject.toml cannot declare stably: the sandbox's C extension.

``sandbox/_forkloop.c`` is the zygote's serving loop (see that file for why it is C). It is optional:
without a C compiler the install still succeeds, and the sandbox falls back to its Python loop
(same isolation, ~1.2x the CPU per job) and says so when it starts.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("sandbox._forkloop", ["sandbox/_forkloop.c"], optional=True,
                             extra_compile_args=["-O2", "-Wall"])])
