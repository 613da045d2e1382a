from setuptools import setup

setup()  # metadata: pyproject.toml
